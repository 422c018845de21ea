"""schemathesis hooks for scripts/ci/fuzz_api.sh: every response must be a driftwarden envelope."""

from __future__ import annotations

import schemathesis

from tests.production.envelope import envelope_problems


@schemathesis.check
def driftwarden_envelope(ctx, response, case):  # type: ignore[no-untyped-def]
    """SPEC §3: envelope on every response (errors included), request id and version headers."""
    problems = envelope_problems(response.status_code, response.headers, response.content)
    if problems:
        raise AssertionError("; ".join(problems))
    return None
