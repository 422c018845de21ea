#!/usr/bin/env bash
# The console's browser tests in a real headless Chromium (Playwright drives the Debian package;
# browser downloads are not possible in CI). Installs chromium with apt when it is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  echo "== installing chromium (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi

echo "== console browser tests ($("$chromium" --version 2>/dev/null | tail -n1))"
RUN_BROWSER=1 CHROMIUM_PATH="$chromium" PYTHONPATH=. .venv/bin/pytest -q -n 0 -m browser tests/browser "$@"
