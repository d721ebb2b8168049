"""`digest serve` for tests: the real waitress server on 127.0.0.1 (a free port), and plain HTTP calls."""

from __future__ import annotations

import contextlib
import http.client
from urllib.parse import urlsplit

from tests.helpers.send import KEYS

ONE_CLICK = {"Content-Type": "application/x-www-form-urlencoded"}


@contextlib.contextmanager
def running_server(settings, monkeypatch, **options):
    """The app under waitress in a thread, with the test key ring; yields the Server."""
    from digest.web.server import start_server

    monkeypatch.setenv("DIGEST_UNSUBSCRIBE_KEYS", KEYS)
    server = start_server(settings, port=0, **options).serve_in_thread()
    try:
        yield server
    finally:
        server.close()


def request(url: str, method: str = "GET", body: bytes | str | None = None,
            headers: dict | None = None) -> tuple[int, dict[str, str], str]:
    """(status, headers, text) of one HTTP request on its own connection."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path, body=body.encode() if isinstance(body, str) else body, headers=headers or {})
        answer = conn.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read().decode("utf-8", "replace")
    finally:
        conn.close()


def token_for(settings, email: str) -> str:
    """A token as the newsletter's emails carry it (signed with the test key ring)."""
    from digest.audience.tokens import KeyRing
    from digest.newsletter import newsletter_identity

    return KeyRing.parse(KEYS).sign(newsletter_identity(settings).newsletter_id, email)
