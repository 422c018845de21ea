"""Contract bodies: what a client sends (Create/Update/requests) apart from what it reads back."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from driftwarden.agents.schemas import AgentStatus
from driftwarden.contracts.drift import Drift, is_valid_version
from driftwarden.schemas import Boolean, Integer, ReadModel

DefinitionType = Literal["gate", "evaluator", "run_type"]
KEY_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
MAX_IMPORT_BINDINGS = 200_000
# No min_length: "" is a string that is not SemVer,
# so it gets CONTRACT_VERSION_INVALID like any other.
VERSION_FIELD = Field(max_length=256, description="SemVer 2.0.0, e.g. 1.4.2")
ConfigSchema = dict[str, Any] | Boolean | None
SCHEMA_FIELD = Field(default=None, description="JSON Schema (Draft 2020-12) for configs, or null.")
CHANGELOG_FIELD = Field(default=None, max_length=20_000)


class DefinitionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    org_id: uuid.UUID | None = None
    definition_type: DefinitionType
    key: str = Field(pattern=KEY_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    contract_version: str = VERSION_FIELD
    default_config: dict[str, Any] = Field(default_factory=dict)
    config_schema: ConfigSchema = SCHEMA_FIELD
    changelog: str | None = CHANGELOG_FIELD
    description: str | None = Field(default=None, max_length=5000)
    builtin: Boolean = Field(
        default=False, description="Global admins only: visible to every org, immutable."
    )


class DefinitionUpdate(BaseModel):
    """The version is not here on purpose: it changes only through apply-upgrade."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    default_config: dict[str, Any] | None = None
    is_active: Boolean | None = None


class DefinitionRead(ReadModel):
    id: uuid.UUID
    org_id: uuid.UUID | None
    builtin: bool
    definition_type: DefinitionType
    key: str
    name: str
    description: str | None
    contract_version: str
    default_config: dict[str, Any]
    config_schema: ConfigSchema = None
    is_active: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: object, **derived: Any) -> Self:
        """A builtin definition is one that belongs to no org."""
        return super().of(row, builtin=row.org_id is None, **derived)  # type: ignore[attr-defined]


class VersionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    definition_id: uuid.UUID
    contract_version: str
    config_schema: ConfigSchema
    default_config: dict[str, Any]
    changelog: str | None
    created_at: datetime
    created_by_api_key_id: uuid.UUID | None


class SchemaChangeRead(BaseModel):
    path: str
    kind: str
    breaking: bool
    detail: str


class DiffRead(BaseModel):
    definition_id: uuid.UUID
    from_version: str
    to_version: str
    changes: list[SchemaChangeRead]
    declared: Drift
    observed: Literal["none", "warning", "breaking"]
    undeclared_breaking: bool


class BindingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    org_id: uuid.UUID | None = None
    definition_id: uuid.UUID
    enabled: Boolean = True
    config: dict[str, Any] = Field(default_factory=dict)
    definition_contract_version: str | None = Field(
        default=None,
        max_length=256,
        description=(
            "Bound version to record (import/pin), stored as given; "
            "default: the definition's current."
        ),
    )


class BindingRead(ReadModel):
    id: uuid.UUID
    org_id: uuid.UUID
    agent_id: uuid.UUID
    definition_id: uuid.UUID
    definition_type: DefinitionType
    definition_key: str
    enabled: bool
    config: dict[str, Any]
    definition_contract_version: str | None
    current_contract_version: str
    drift: Drift
    reason: str
    config_valid: bool | None = None
    config_errors: list[ConfigError] | None = None
    undeclared_breaking: bool = False
    severity: Drift
    created_at: datetime
    updated_at: datetime


class ConfigError(BaseModel):
    path: str
    message: str


class DriftItemRead(BaseModel):
    binding_id: uuid.UUID
    agent_id: uuid.UUID
    agent_name: str
    definition_id: uuid.UUID
    definition_type: DefinitionType
    definition_key: str
    bound_contract_version: str | None
    current_contract_version: str | None
    drift: Drift
    reason: str
    enabled: bool
    config_valid: bool | None = None
    config_errors: list[ConfigError] | None = None
    undeclared_breaking: bool = False
    severity: Drift


class DriftCounts(BaseModel):
    none: int
    warning: int
    breaking: int
    invalid: int


class DriftScanRead(BaseModel):
    checked_agent_count: int
    checked_binding_count: int
    counts: DriftCounts
    severity_counts: DriftCounts
    breaking_count: int
    warning_count: int
    invalid_count: int
    total_count: int
    count: int
    limit: int
    offset: int
    items: list[DriftItemRead]


class UpgradePreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    org_id: uuid.UUID | None = None
    definition_id: uuid.UUID
    target_contract_version: str = VERSION_FIELD
    include_items: Boolean = True
    max_items: Integer = Field(default=200, ge=1, le=1000)
    config_schema: ConfigSchema = Field(
        default=None,
        description="The target's schema; omitted: "
        "the target version's stored one, else the current one.",
    )
    default_config: dict[str, Any] | None = None


class ApplyUpgradeRequest(UpgradePreviewRequest):
    rollout_mode: Literal["definition_only", "sync_bindings"] = "definition_only"
    changelog: str | None = CHANGELOG_FIELD


class UpgradeItemRead(BaseModel):
    binding_id: uuid.UUID
    agent_id: uuid.UUID
    agent_name: str
    enabled: bool
    bound_contract_version: str | None
    current_contract_version: str
    target_contract_version: str
    drift: Drift
    reason: str
    config_valid_after: bool | None = None
    config_errors_after: list[ConfigError] | None = None


class UpgradePreviewRead(BaseModel):
    definition_id: uuid.UUID
    definition_type: DefinitionType
    definition_key: str
    current_contract_version: str
    target_contract_version: str
    status: Literal["safe", "risky"]
    binding_count: int
    breaking_count: int
    warning_count: int
    invalid_count: int
    unchanged_count: int
    config_invalid_after_count: int = 0
    items: list[UpgradeItemRead]


class ApplyUpgradeRead(BaseModel):
    definition: DefinitionRead
    rollout_mode: Literal["definition_only", "sync_bindings"]
    previous_contract_version: str
    bindings_updated: int
    preview: UpgradePreviewRead


def _semver(value: str) -> str:
    if not is_valid_version(value):
        raise ValueError(f"{value!r} is not a valid SemVer 2.0.0 version")
    return value


class ImportDefinition(BaseModel):
    """A definition in an import document; matched by (definition_type, key) within the org."""

    model_config = ConfigDict(extra="forbid")
    definition_type: DefinitionType
    key: str = Field(pattern=KEY_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    contract_version: str = VERSION_FIELD
    default_config: dict[str, Any] | None = None
    config_schema: ConfigSchema = SCHEMA_FIELD
    changelog: str | None = CHANGELOG_FIELD
    description: str | None = Field(default=None, max_length=5000)
    is_active: Boolean | None = None

    _check_version = field_validator("contract_version")(_semver)


class ImportBinding(BaseModel):
    """A binding of the enclosing agent.

    The definition is the org's own (type, key), else the builtin.
    """

    model_config = ConfigDict(extra="forbid")
    definition_type: DefinitionType
    key: str = Field(pattern=KEY_PATTERN)
    enabled: Boolean | None = None
    config: dict[str, Any] | None = None
    definition_contract_version: str | None = Field(
        default=None,
        max_length=256,
        description="Bound version, stored as given; new bindings default to current.",
    )


class ImportAgent(BaseModel):
    """An agent in an import document; matched by `external_id` within the org."""

    model_config = ConfigDict(extra="forbid")
    external_id: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    agent_type: str | None = Field(default=None, max_length=100)
    status: AgentStatus | None = None
    model: str | None = Field(default=None, max_length=200)
    metadata: dict[str, Any] | None = None
    bindings: list[ImportBinding] = Field(default_factory=list, max_length=1000)


class ImportDocument(BaseModel):
    """Definitions, agents and their bindings to upsert in one all-or-nothing transaction."""

    model_config = ConfigDict(extra="forbid")
    org_id: uuid.UUID | None = None
    definitions: list[ImportDefinition] = Field(default_factory=list, max_length=10_000)
    agents: list[ImportAgent] = Field(default_factory=list, max_length=20_000)

    @model_validator(mode="after")
    def _bounded(self) -> ImportDocument:
        """One transaction holds the whole document, so its size is bounded; split larger fleets."""
        total = sum(len(agent.bindings) for agent in self.agents)
        if total > MAX_IMPORT_BINDINGS:
            raise ValueError(
                f"{total} bindings in one document; at most {MAX_IMPORT_BINDINGS}, split the import"
            )
        return self


class ImportTally(BaseModel):
    created: int
    updated: int
    unchanged: int


class ImportDefinitionOutcome(BaseModel):
    id: uuid.UUID
    definition_type: DefinitionType
    key: str
    outcome: Literal["created", "updated", "unchanged"]


class ImportDefinitionsResult(ImportTally):
    items: list[ImportDefinitionOutcome]


class ImportAgentsResult(ImportTally):
    created_external_ids: list[str]
    updated_external_ids: list[str]


class ImportResult(BaseModel):
    org_id: uuid.UUID
    dry_run: bool
    definitions: ImportDefinitionsResult
    agents: ImportAgentsResult
    bindings: ImportTally
