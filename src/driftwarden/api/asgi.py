"""Import target for uvicorn workers: `uvicorn driftwarden.api.asgi:app`."""

from driftwarden.api.app import create_app

app = create_app()
