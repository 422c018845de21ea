"""Real races on Postgres: concurrent binds, upgrades and imports stay consistent.

No in-process locks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.contracts.helpers import agent, definition
from tests.support import ON_POSTGRES, LiveServer

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not ON_POSTGRES, reason="needs PostgreSQL (RUN_DB_INTEGRATION=1)"),
]


def _race(
    n: int, call: Callable[[httpx.Client, int], httpx.Response], url: str, headers: dict
) -> list[httpx.Response]:
    barrier, results = threading.Barrier(n), [None] * n

    def worker(i: int) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            barrier.wait()
            results[i] = call(client, i)  # type: ignore[call-overload]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results  # type: ignore[return-value]


def test_concurrent_binds_make_one_binding(app: Any, client: Any, admin: Any) -> None:
    gate, bot = definition(client, admin, "g", "1.0.0"), agent(client, admin, "bot")
    with LiveServer(app) as server:
        results = _race(
            6,
            lambda c, i: c.post(
                f"/api/v1/agents/{bot['id']}/bindings", json={"definition_id": gate["id"]}
            ),
            server.url,
            admin.headers,
        )
    assert sorted(r.status_code for r in results) == [200] * 5 + [201]
    assert len({r.json()["data"]["id"] for r in results}) == 1


def test_concurrent_upgrades_apply_one_after_the_other(app: Any, client: Any, admin: Any) -> None:
    gate = definition(client, admin, "g", "1.0.0")
    for n in range(5):
        client.post(
            f"/api/v1/agents/{agent(client, admin, f'a{n}')['id']}/bindings",
            headers=admin.headers,
            json={"definition_id": gate["id"]},
        )
    targets = ["1.1.0", "1.2.0", "2.0.0", "2.1.0"]
    with LiveServer(app) as server:
        results = _race(
            4,
            lambda c, i: c.post(
                "/api/v1/contracts/apply-upgrade",
                headers={"Idempotency-Key": f"u{i}"},
                json={
                    "definition_id": gate["id"],
                    "target_contract_version": targets[i],
                    "rollout_mode": "sync_bindings",
                },
            ),
            server.url,
            admin.headers,
        )
    assert [r.status_code for r in results] == [200] * 4
    final = client.get(f"/api/v1/contracts/definitions/{gate['id']}", headers=admin.headers).json()[
        "data"
    ]
    scan = client.get(
        "/api/v1/contracts/drift", headers=admin.headers, params={"include_healthy": "true"}
    ).json()["data"]
    assert scan["counts"]["none"] == 5 and {i["bound_contract_version"] for i in scan["items"]} == {
        final["contract_version"]
    }
    previous = {r.json()["data"]["previous_contract_version"] for r in results}
    assert (
        len(previous) == 4 and "1.0.0" in previous
    )  # each saw the one before it: serialised by the row lock


def test_concurrent_imports_never_duplicate(app: Any, client: Any, admin: Any) -> None:
    doc = {
        "definitions": [
            {"definition_type": "gate", "key": "g", "name": "G", "contract_version": "1.0.0"}
        ],
        "agents": [
            {
                "external_id": f"e{n}",
                "name": f"n{n}",
                "bindings": [{"definition_type": "gate", "key": "g"}],
            }
            for n in range(50)
        ],
    }
    with LiveServer(app) as server:
        results = _race(
            4, lambda c, i: c.post("/api/v1/contracts/import", json=doc), server.url, admin.headers
        )
    assert {r.status_code for r in results} <= {200, 409} and 200 in {
        r.status_code for r in results
    }
    assert all(
        r.json()["error"]["code"] == "IMPORT_CONFLICT" for r in results if r.status_code == 409
    )
    agents = client.get("/api/v1/agents", headers=admin.headers, params={"limit": 200}).json()[
        "data"
    ]
    assert agents["total_count"] == 50
    scan = client.get(
        "/api/v1/contracts/drift", headers=admin.headers, params={"include_healthy": "true"}
    ).json()["data"]
    assert scan["checked_binding_count"] == 50
