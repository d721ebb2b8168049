"""The preview answers only a browser that has its secret, and serves issue files so that they cannot run."""

from __future__ import annotations

import http.client
import re
import stat
from urllib.parse import urlsplit

import pytest

from tests.helpers.project import EXAMPLE_ISSUE

EVIL_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>'
            "fetch('/api/subscribers?q=').then(r => r.text()).then(t => document.title = t)</script></svg>")


def request(server, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("path", ["/", "/api/issues", "/api/subscribers?q=", f"/api/issue/{EXAMPLE_ISSUE}",
                                  f"/issue/{EXAMPLE_ISSUE}/email.html", f"/issue/{EXAMPLE_ISSUE}/message.eml",
                                  f"/issue/{EXAMPLE_ISSUE}/files/images/yellow-shape.png", "/events",
                                  "/assets/index.js"])
def test_without_the_secret_nothing_is_answered(server, path):
    status, _, body = request(server, path)
    assert status == 403
    assert b"@" not in body  # not a single address
    assert b"the address `digest preview` printed" in body
    assert request(server, path + ("&" if "?" in path else "?") + "token=not-the-token")[0] == 403


def test_the_token_in_the_url_becomes_an_httponly_strict_cookie(server):
    token = server.token
    status, headers, _ = request(server, f"/issue/{EXAMPLE_ISSUE}?s=ann%40example.org&token={token}")
    assert status == 303
    assert headers["location"] == f"/issue/{EXAMPLE_ISSUE}?s=ann%40example.org"  # the token leaves the URL
    cookie = headers["set-cookie"]
    assert cookie.startswith(f"{server.cookie_name}={token};")
    assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= {p.strip() for p in cookie.split(";")}
    signed_in = {"Cookie": f"{server.cookie_name}={token}"}
    assert request(server, "/api/issues", signed_in)[0] == 200
    assert request(server, "/api/subscribers?q=", signed_in)[0] == 200
    assert request(server, "/api/issues", {"Cookie": f"{server.cookie_name}=wrong"})[0] == 403


def test_the_printed_address_carries_the_token(server):
    url = urlsplit(server.login_url(server.start_path))
    assert (url.hostname, url.port, url.path) == ("127.0.0.1", server.port, "/")
    assert url.query == f"token={server.token}" and len(server.token) >= 32


def test_the_secret_is_kept_in_the_private_state_folder_for_the_next_run(settings, server):
    from digest.preview.server import start_preview

    again = start_preview(settings, port=0)
    try:
        assert again.token == server.token  # an open tab still works after a restart
    finally:
        again.stop()
    path = settings.path("state") / "preview-token"
    assert path.read_text(encoding="ascii").strip() == server.token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_issue_files_are_served_sandboxed_without_scripts(server, project):
    (project / "issues" / "images" / "evil.svg").write_text(EVIL_SVG, encoding="utf-8")
    signed_in = {"Cookie": f"{server.cookie_name}={server.token}"}
    for name in ("evil.svg", "yellow-shape.png"):
        status, headers, _ = request(server, f"/issue/{EXAMPLE_ISSUE}/files/images/{name}", signed_in)
        assert status == 200
        policy = {d.strip().split(" ")[0]: d.strip() for d in headers["content-security-policy"].split(";")}
        assert policy["sandbox"] == "sandbox" and policy["default-src"] == "default-src 'none'"
        assert headers["x-content-type-options"] == "nosniff"


def test_the_cli_prints_the_address_with_its_token(project):
    import os
    import signal
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    proc = subprocess.Popen([sys.executable, "-m", "digest", "preview", "--port", "0", "--no-open"], cwd=project,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        line = proc.stdout.readline()
        match = re.match(r"Previewing at http://127\.0\.0\.1:(\d+)/\?token=([A-Za-z0-9_-]{32,}) — ", line)
        assert match, line
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    finally:
        proc.kill()
