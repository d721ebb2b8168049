"""Headless Chromium for the page tests: Debian's /usr/bin/chromium driven by Playwright.

Registered as a plugin in tests/conftest.py: the `browser` fixture (one per module). A module that
uses it marks itself with BROWSER_MARKS (browser + slow, skipped where Chromium is not installed).
"""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# What this machine needs: no sandbox as root, and no background network (the network is closed).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed at /usr/bin/chromium"),
]


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module's tests (each test opens its own context)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
