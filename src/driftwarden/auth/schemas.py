"""Request and response bodies for orgs and API keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from driftwarden.auth.keys import Role
from driftwarden.schemas import ReadModel, Timestamp


class OrgCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    slug: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{0,99}$")


class OrgRead(ReadModel):
    id: uuid.UUID
    name: str
    slug: str
    created_at: datetime


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    org_id: uuid.UUID | None = Field(
        default=None, description="null = a global key (global admins only)"
    )
    role: Role = "viewer"
    expires_at: Timestamp | None = None


# `status` depends on the clock too: `ApiKeyRead.of(row, status=key_status(row, now))`.
class ApiKeyRead(ReadModel):
    id: uuid.UUID
    name: str
    org_id: uuid.UUID | None
    role: Role
    key_prefix: str
    status: Literal["active", "revoked", "expired"]
    expires_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime


class ApiKeyCreated(ApiKeyRead):
    api_key: str = Field(description="The plaintext key. Shown once, never again.")
