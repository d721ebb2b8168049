"""`digest preview`: a live browser preview of the issues on 127.0.0.1, re-rendered when a file is saved.

The pieces: project.py (what the pages show: issues, states, renders), watch.py (finding changed
files), routes.py (the request handler and its route table), dark.py (dark-mode emulation),
subscribers.py (the subscriber picker), assets/ (the pages' HTML, CSS and JS); the issue states come
from the one status model, digest/status.py.
"""

from __future__ import annotations

import errno
import os
import secrets
import socketserver
import sys
import threading
import webbrowser
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Callable
from urllib.parse import quote

from digest.clock import Clock, utc_now
from digest.errors import DigestError
from digest.preview.project import PreviewProject
from digest.preview.routes import PreviewHandler
from digest.preview.watch import POLL_INTERVAL

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings

HOST = "127.0.0.1"  # never all interfaces: the preview shows subscriber data and unpublished issues
# 8025 is the usual web port of Mailpit/MailHog, which people run next to a newsletter tool to catch
# test sends; the preview keeps out of its way.
DEFAULT_PORT = 8040
PORT_TRIES = 10  # DEFAULT_PORT … DEFAULT_PORT+9, then any free port the system gives


class PreviewError(DigestError):
    """The preview server cannot start (its port is taken or not allowed)."""


class PreviewServer(ThreadingHTTPServer):
    """The HTTP server plus the thread that polls the project's files."""

    daemon_threads = True  # open event streams must not keep the process alive after Ctrl-C

    def __init__(self, project: PreviewProject, port: int, *, poll_interval: float = POLL_INTERVAL,
                 on_change: Callable[[list[Path]], None] | None = None,
                 on_error: Callable[[str, str], None] | None = None, token: str | None = None):
        self.project = project
        # Only a browser that has this answers: the list is on the page, and any local user (on a
        # shared machine) can reach 127.0.0.1. It comes in the printed URL once, then as a cookie.
        self.token = token or secrets.token_urlsafe(32)
        self.poll_interval = poll_interval
        self.on_change = on_change
        self.on_error = on_error
        self.stopping = False
        self.start_path = "/"
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._serving: threading.Thread | None = None
        super().__init__((HOST, port), PreviewHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up (socket.getfqdn), which can hang for seconds
        # on a machine with slow DNS; the name is known.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = HOST, self.server_address[1]

    @property
    def port(self) -> int:
        """The port actually bound."""
        return self.server_address[1]

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT (no trailing slash)."""
        return f"http://{HOST}:{self.port}"

    @property
    def cookie_name(self) -> str:
        """The cookie that carries the token: one per port, as cookies are shared by every port of a host."""
        return f"digest_preview_{self.port}"

    def login_url(self, path: str = "/") -> str:
        """The address to open (and print): `path` with the token, which the first answer moves to a cookie."""
        return f"{self.url}{path}{'&' if '?' in path else '?'}token={self.token}"

    def report_error(self, what: str, details: str) -> None:
        """Hand an unexpected request failure to the caller (the CLI prints it)."""
        if self.on_error is not None:
            self.on_error(what, details)

    def start_watching(self) -> None:
        """Poll the watched files in a background thread until stop()."""
        def loop() -> None:
            while not self._stop.wait(self.poll_interval):
                try:
                    changed = self.project.poll()
                except Exception as exc:  # keep watching: a vanished folder must not end live reload
                    import traceback

                    self.report_error(f"watching files: {exc!r}", traceback.format_exc())
                    continue
                if changed and self.on_change is not None:
                    self.on_change(changed)

        self._watcher = threading.Thread(target=loop, name="digest-preview-watch", daemon=True)
        self._watcher.start()

    def serve_in_thread(self) -> None:
        """serve_forever() in a background thread (tests, embedding)."""
        self._serving = threading.Thread(target=self.serve_forever, name="digest-preview-http", daemon=True)
        self._serving.start()

    def stop(self) -> None:
        """Stop watching, end the event streams, stop serving and close the socket."""
        self.stopping = True
        self._stop.set()
        self.project.close()
        if self._serving is not None:
            self.shutdown()
            self._serving.join(timeout=5)
        self.server_close()
        if self._watcher is not None:
            self._watcher.join(timeout=5)


def bind_server(project: PreviewProject, port: int | None, **options) -> PreviewServer:
    """A PreviewServer on 127.0.0.1: on `port` exactly when given, else on the first free default."""
    candidates = [port] if port is not None else [*range(DEFAULT_PORT, DEFAULT_PORT + PORT_TRIES), 0]
    last: OSError | None = None
    for candidate in candidates:
        try:
            return PreviewServer(project, candidate, **options)
        except OSError as exc:
            if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                raise PreviewError(f"{HOST}:{candidate}: cannot listen: {exc.strerror or exc}.")
            last = exc
    wanted = port if port is not None else DEFAULT_PORT
    raise PreviewError(f"{HOST}:{wanted}: cannot listen: {last.strerror if last else 'port in use'}.",
                       "another program uses that port: pick another with --port N (--port 0: any free port)")


def start_preview(settings: "Settings", *, issue: str | None = None, port: int | None = None,
                  poll_interval: float = POLL_INTERVAL, on_change: Callable[[list[Path]], None] | None = None,
                  on_error: Callable[[str, str], None] | None = None, now: Clock = utc_now) -> PreviewServer:
    """Bind the preview server and start watching files; the caller runs serve_forever() and stop()."""
    from digest.compose.issue import find_issue, issue_paths

    extra: tuple[Path, ...] = ()
    start_path = "/"
    if issue:
        path = find_issue(settings, issue)
        if path.resolve() not in {p.resolve() for p in issue_paths(settings)}:
            extra = (path,)  # a file outside the issues folder is previewed (and watched) too
        start_path = f"/issue/{quote(path.stem)}"
    from digest.store.preview_token import preview_token

    project = PreviewProject(settings, extra_issues=extra, now=now)
    server = bind_server(project, port, poll_interval=poll_interval, on_change=on_change, on_error=on_error,
                         token=preview_token(settings))
    server.start_path = start_path
    server.start_watching()
    return server


def open_browser(url: str) -> bool:
    """Open `url` in a graphical browser; False when there is none (nothing is opened then)."""
    # Without a display Python's webbrowser falls back to text browsers (lynx, w3m) that would take
    # over this terminal and hide the preview's own messages.
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        return webbrowser.open(url)
    except webbrowser.Error:
        return False
