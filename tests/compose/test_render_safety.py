"""What the once-per-issue render must never do: fetch anything while inlining CSS."""

from __future__ import annotations

import http.server
import sys
import threading
from pathlib import Path

import pytest

from digest.compose.render import inline_css

_OPENED: list[str] = []


def _audit(event: str, args: tuple) -> None:
    # Every file Python opens while a test watches (audit hooks cannot be removed: it only records).
    if event == "open" and args and isinstance(args[0], (str, bytes, Path)):
        _OPENED.append(str(args[0]))


sys.addaudithook(_audit)


@pytest.fixture
def css_server():
    """A local HTTP server that counts every request and answers with a stylesheet."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the base class's name
            hits.append(self.path)
            body = b"p { color: #ff0000; }"
            self.send_response(200)
            self.send_header("Content-Type", "text/css")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, hits
    server.shutdown()
    server.server_close()


def test_inlining_css_fetches_no_import_over_http_or_from_a_file(css_server, tmp_path):
    server, hits = css_server
    secret = tmp_path / "secret.css"
    secret.write_text("p { color: #00ff00; }", encoding="utf-8")
    page = ("<html><head><style>"
            f"@import url('http://127.0.0.1:{server.server_address[1]}/remote.css');"
            f"@import url('{secret.as_uri()}');"
            "p { font-size: 15px; }</style></head><body><p>Hello</p></body></html>")
    _OPENED.clear()
    out = inline_css(page)
    assert hits == []  # nothing was asked of the server
    assert not [p for p in _OPENED if p.endswith("secret.css")]  # the file was never opened
    assert 'style="font-size:15px"' in out.replace(": ", ":").replace("; ", ";")
    assert "#00ff00" not in out and "#ff0000" not in out
