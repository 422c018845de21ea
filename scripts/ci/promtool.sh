#!/usr/bin/env bash
# Check and unit-test the Prometheus alert rules, and parse every query of the Grafana dashboard.
# Installs Debian's `prometheus` package (which ships promtool) when promtool is missing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
python="${PYTHON:-${root}/.venv/bin/python}"

if ! command -v promtool >/dev/null 2>&1; then
  sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  ${sudo_cmd} apt-get update
  DEBIAN_FRONTEND=noninteractive ${sudo_cmd} apt-get install -y --no-install-recommends prometheus
fi

promtool check rules "${root}/deploy/prometheus/driftwarden-rules.yml"
promtool test rules "${root}"/deploy/prometheus/tests/*.yml

queries="$(mktemp --suffix=.yml)"
trap 'rm -f "${queries}"' EXIT
"${python}" "${root}/scripts/ci/dashboard_rules.py" "${root}/deploy/grafana/driftwarden.json" >"${queries}"
promtool check rules "${queries}"
