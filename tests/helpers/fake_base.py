"""The machinery every local mail-service stand-in shares: a real HTTP server on 127.0.0.1,
scripted whole-request replies, counters of what was posted and accepted."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One HTTP answer."""

    status: int
    body: Any = b""            # bytes, str, or anything JSON-serialisable
    headers: dict = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, "application/octet-stream" if self.body else "text/plain"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return json.dumps(self.body).encode(), "application/json"


@dataclass
class Scripted:
    """A whole-request behaviour queued for the next call."""

    reply: Reply | None = None   # answer this instead of the normal handling (None: handle normally)
    delay: float = 0.0           # sleep this long before answering
    process: bool = False        # with delay: handle normally (accept) even though the answer is late
    drop: bool = False           # close the connection without answering (nothing processed)


@dataclass
class Call:
    """What one request carried, as the fake understood it."""

    method: str
    path: str
    headers: dict
    payload: Any
    recipients: list[str]
    port: int                    # client's source port: the same port means a reused connection
    status: int = 0


class FakeProvider:
    """Base class: server lifecycle, scripting, counters. Subclasses implement `handle`."""

    name = ""

    def __init__(self, token: str = "test-token"):
        self.token = token
        self.calls: list[Call] = []
        self.posted: Counter[str] = Counter()
        self.accepted: Counter[str] = Counter()
        self.rejections: dict[str, str] = {}
        self.script: deque[Scripted] = deque()
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._ids = 0

    # -- scripting --------------------------------------------------------------------------

    def reject(self, address: str, kind: str = "invalid") -> None:
        """Make the provider refuse `address` the way it refuses a bad / suppressed recipient."""
        assert kind in ("invalid", "inactive", "transient"), kind
        self.rejections[address.lower()] = kind

    def then(self, status: int, body: Any = None, headers: dict | None = None) -> None:
        """Queue a whole-request reply for the next call (body defaults to the provider's own)."""
        self.script.append(Scripted(Reply(status, self.error_body(status) if body is None else body,
                                          headers or {})))

    def hang(self, seconds: float, *, process: bool = False) -> None:
        """Next call: answer only after `seconds` (longer than the client's timeout → timeout).

        process=True: the provider accepted the messages anyway (the client never learns it).
        """
        self.script.append(Scripted(None, delay=seconds, process=process))

    def drop(self) -> None:
        """Next call: close the connection without answering."""
        self.script.append(Scripted(None, drop=True))

    def error_body(self, status: int) -> Any:
        """The provider's documented body for a whole-request error of this status."""
        return {"message": f"error {status}"}

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "FakeProvider":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse is observable
            # Headers and body go out in separate writes: with Nagle on, the body waits for the
            # client's delayed ACK (~40 ms per call on a kept-open connection).
            disable_nagle_algorithm = True

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                fake._serve(self)

            do_GET = do_PUT = do_DELETE = do_POST

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- request plumbing -------------------------------------------------------------------

    def next_id(self) -> int:
        with self.lock:
            self._ids += 1
            return self._ids

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in h.headers.items()}
        call = Call(h.command, h.path, headers, None, [], h.client_address[1])
        with self.lock:
            scripted = self.script.popleft() if self.script else None
            self.calls.append(call)
        if scripted and scripted.drop:
            call.payload, call.recipients = self.peek(headers, body)
            with self.lock:
                for r in call.recipients:
                    self.posted[r] += 1
            h.close_connection = True  # the socket closes with no answer: the client sees a reset
            return
        try:
            if scripted and (scripted.reply is not None or (scripted.delay and not scripted.process)):
                call.payload, call.recipients = self.peek(headers, body)
                reply = scripted.reply or Reply(504, "too late: nobody is waiting for this answer")
            else:
                reply = self.handle(call, headers, body)
        except Exception as exc:  # a bug in the fake must show up as a 500, not a hung client
            reply = Reply(500, f"fake {self.name} crashed: {exc!r}")
        with self.lock:
            for r in call.recipients:
                self.posted[r] += 1
        if scripted and scripted.delay:
            time.sleep(scripted.delay)  # processed (or not) already; only the answer is late
        call.status = reply.status
        data, ctype = reply.encoded()
        try:
            h.send_response(reply.status)
            h.send_header("Content-Type", ctype)
            h.send_header("Content-Length", str(len(data)))
            for k, v in reply.headers.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test)

    def peek(self, headers: dict, body: bytes) -> tuple[Any, list[str]]:
        """Best-effort (payload, recipients) of a request answered by a scripted reply."""
        return None, []

    def handle(self, call: Call, headers: dict, body: bytes) -> Reply:  # pragma: no cover
        raise NotImplementedError

    def accept(self, address: str) -> None:
        with self.lock:
            self.accepted[address.lower()] += 1

    def kind(self, address: str) -> str | None:
        return self.rejections.get(address.lower())


def bare(addr: str) -> str:
    addr = addr.strip()
    if addr.endswith(">") and "<" in addr:
        return addr[addr.rfind("<") + 1:-1].strip().lower()
    return addr.lower()


def looks_like_address(addr: str) -> bool:
    local, _, domain = addr.rpartition("@")
    return bool(local) and "." in domain and " " not in addr
