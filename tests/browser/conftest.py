"""Browser tests run only with RUN_BROWSER=1 (real Chromium: /usr/bin/chromium or CHROMIUM_PATH)."""

from __future__ import annotations

import os

import pytest

RUN_BROWSER = os.environ.get("RUN_BROWSER") == "1"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(
        reason="browser tests need RUN_BROWSER=1 and Chromium (scripts/ci/browser.sh)"
    )
    for item in items:
        if "browser" in item.keywords and not RUN_BROWSER:
            item.add_marker(skip)


@pytest.fixture
def settings(database_url: str):  # type: ignore[no-untyped-def]
    from tests.console.conftest import console_settings

    return console_settings(database_url)
