"""Print the Grafana dashboard's queries as a rules file, for `promtool check rules` to parse.

python scripts/ci/dashboard_rules.py deploy/grafana/driftwarden.json > /tmp/dashboard-rules.yml
"""

from __future__ import annotations

import json
import sys

import yaml

# Grafana's variables, replaced by values any PromQL parser accepts.
VARIABLES = {"$__rate_interval": "5m", "$org": ".*"}


def expressions(dashboard: dict) -> list[str]:
    """Every target expression of every panel, with the dashboard variables filled in."""
    found = []
    for panel in dashboard.get("panels", []):
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, replacement in VARIABLES.items():
                expr = expr.replace(variable, replacement)
            found.append(expr)
    return found


def as_rules(exprs: list[str]) -> dict:
    rules = [{"record": f"dashboard:query_{n}", "expr": expr} for n, expr in enumerate(exprs)]
    return {"groups": [{"name": "dashboard-queries", "rules": rules}]}


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as handle:
        sys.stdout.write(yaml.safe_dump(as_rules(expressions(json.load(handle))), sort_keys=False))
