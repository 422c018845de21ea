"""`python -m driftwarden.cli`: the same command as the `driftwarden` console script."""

from driftwarden.cli import app

app(prog_name="driftwarden")
