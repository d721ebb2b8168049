"""`digest serve`: the reader-facing app under waitress, a production WSGI server.

waitress answers from a pool of threads; each request opens its own ledger connection, so the
unsubscribe writes queue on SQLite's write lock (WAL: readers never wait) beside a running send.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from digest.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8050
DEFAULT_THREADS = 8


class Server:
    """A waitress server around the app, bound and ready; `run()` serves until `close()`."""

    def __init__(self, settings: "Settings", *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 threads: int = DEFAULT_THREADS, archive: Path | None = None):
        import waitress.server

        from digest.audience.tokens import KeyRing
        from digest.web.app import make_app

        # Refuse to start without the real key ring: every link would answer "does not work".
        KeyRing.for_settings(settings)
        # The ledger made (or upgraded) once here, not by the first requests racing each other.
        from digest.store.ledger import Ledger

        Ledger.for_settings(settings).close()
        self.app = make_app(settings)
        self.app.archive_dir = Path(archive) if archive else None
        if threads < 1:
            raise ConfigError(f"--threads {threads}: at least 1 thread is needed.")
        try:
            self._server = waitress.server.create_server(
                self.app, host=host, port=port, threads=threads, ident="digest",
                # Behind a reverse proxy the client's address is in X-Forwarded-For; the app needs
                # none of it, so no header is trusted.
                clear_untrusted_proxy_headers=True, channel_timeout=30)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}.",
                              "choose another --port, or stop the program that uses it") from None
        self.host = host
        self.port = self._server.effective_port
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL the server answers on."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def run(self) -> None:
        """Serve until close() (or Ctrl-C in the caller)."""
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "task queue depth" on every burst
        self._server.run()

    def serve_in_thread(self) -> "Server":
        """Serve from a daemon thread (tests, benchmarks)."""
        self._thread = threading.Thread(target=self.run, name="digest-serve", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop listening and let the worker threads finish."""
        from waitress import wasyncore

        if self._thread is not None and self._thread.is_alive():
            # Closed from the serving thread itself (the trigger runs it there): closing sockets
            # under a select() running in another thread fails it with EBADF.
            self._server.trigger.pull_trigger(lambda: wasyncore.close_all(self._server._map))
            self._thread.join(timeout=10)
        else:
            wasyncore.close_all(self._server._map)
        self._server.task_dispatcher.shutdown()


def start_server(settings: "Settings", *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 threads: int = DEFAULT_THREADS, archive: Path | None = None) -> Server:
    """A bound server for the project's settings (ConfigError when the keys are missing or the port is taken)."""
    return Server(settings, host=host, port=port, threads=threads, archive=archive)
