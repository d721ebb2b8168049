"""The preview's test fixture: `server`, a real preview server on a free port of 127.0.0.1."""

from __future__ import annotations

import pytest


@pytest.fixture
def server(settings):
    """`digest preview` of the copied project, serving in a thread and polling files every 50 ms."""
    from digest.preview.server import start_preview

    srv = start_preview(settings, port=0, poll_interval=0.05)
    srv.serve_in_thread()
    yield srv
    srv.stop()
