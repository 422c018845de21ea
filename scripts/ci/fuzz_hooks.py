"""schemathesis hooks for scripts/ci/fuzz_api.sh: every response must be a driftwarden envelope."""

from __future__ import annotations

import os

import schemathesis

from tests.production.envelope import envelope_problems

ORG_ID = os.environ.get("FUZZ_ORG_ID")


@schemathesis.check
def driftwarden_envelope(ctx, response, case):  # type: ignore[no-untyped-def]
    """The envelope on every response (errors included), request id and version headers.

    docs/reference/api.md
    """
    problems = envelope_problems(response.status_code, response.headers, response.content)
    if problems:
        raise AssertionError("; ".join(problems))
    return None


def _own_org(container):  # type: ignore[no-untyped-def]
    """A random org_id only ever meets 403 ORG_FORBIDDEN; the key's own org reaches the logic."""
    if ORG_ID and isinstance(container, dict) and isinstance(container.get("org_id"), str):
        container["org_id"] = ORG_ID
    return container


@schemathesis.hook
def map_body(ctx, body):  # type: ignore[no-untyped-def]
    return _own_org(body)


@schemathesis.hook
def map_query(ctx, query):  # type: ignore[no-untyped-def]
    return _own_org(query)
