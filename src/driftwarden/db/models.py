"""Import every domain's tables so Base.metadata knows them all (Alembic, test fixtures)."""

from driftwarden.agents import models as agents_models  # noqa: F401 - imported to register its tables
from driftwarden.api import models as api_models  # noqa: F401 - imported to register its tables
from driftwarden.auth import models as auth_models  # noqa: F401 - imported to register its tables
from driftwarden.console import models as console_models  # noqa: F401 - imported to register its tables
from driftwarden.contracts import models as contracts_models  # noqa: F401 - imported to register its tables
from driftwarden.db.base import Base
from driftwarden.notifications import models as notifications_models  # noqa: F401 - imported to register its tables
from driftwarden.patterns import models as patterns_models  # noqa: F401 - imported to register its tables
from driftwarden.scheduler import models as scheduler_models  # noqa: F401 - imported to register its tables

metadata = Base.metadata
