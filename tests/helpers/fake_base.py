"""The machinery every local mail-service stand-in shares: a real HTTP server on 127.0.0.1,
scripted whole-request replies, counters of what was posted and accepted."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from email.headerregistry import HeaderRegistry
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
    raw: bytes = b""             # the request body as it arrived, byte for byte


@dataclass
class Delivered:
    """One message as its reader would get it from the provider: the header fields a mail client
    shows (names decoded) and the bodies, after the provider's own changes (e.g. Postmark's
    unsubscribe footer)."""

    to: list[tuple[str, str]]    # (display name, address) as a mail client reads the To field
    sender: str
    subject: str
    headers: dict
    html: str = ""
    text: str = ""


class FakeProvider:
    """Base class: server lifecycle, scripting, counters. Subclasses implement `handle`."""

    name = ""

    def __init__(self, token: str = "test-token"):
        self.token = token
        self.calls: list[Call] = []
        self.posted: Counter[str] = Counter()
        self.accepted: Counter[str] = Counter()
        self.rejections: dict[str, str] = {}
        self.delivered: list[Delivered] = []  # what readers got, in order
        self.injections: list[str] = []       # address fields that would have reached other people
        self.api_calls: list[Call] = []       # management calls (not sends): never scripted
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

    def is_send(self, method: str, path: str) -> bool:
        """Whether a request is a send (scripted, counted in `calls`) or a management call."""
        return True

    def done(self, call: Call) -> None:
        """Hook: the answer to `call` has been written (or the connection dropped)."""

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in h.headers.items()}
        call = Call(h.command, h.path, headers, None, [], h.client_address[1], raw=body)
        send = self.is_send(h.command, h.path.split("?")[0])
        with self.lock:
            scripted = self.script.popleft() if self.script and send else None
            (self.calls if send else self.api_calls).append(call)
        try:
            self._answer(h, call, headers, body, scripted)
        finally:
            self.done(call)

    def _answer(self, h: BaseHTTPRequestHandler, call: Call, headers: dict, body: bytes,
                scripted: Scripted | None) -> None:
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

    def deliver(self, to_field: str, sender: str, subject: str, headers: dict | None = None,
                html: str = "", text: str = "", *, to: list[tuple[str, str]] | None = None) -> None:
        """Record a message as its reader gets it; count each recipient as accepted.

        `to` is given for providers that take structured addresses; otherwise `to_field` is read
        as a mail client reads a To field. A field naming anybody but the one intended reader, or a
        name that decodes to a line break, is recorded in `injections`.
        """
        parsed = to if to is not None else mailboxes(to_field)
        if parsed is None or len(parsed) != 1 or any(has_control(n) for n, _ in parsed):
            with self.lock:
                self.injections.append(to_field)
        for _, addr in parsed or []:
            self.accept(addr)
        with self.lock:
            self.delivered.append(Delivered(parsed or [], sender, subject, dict(headers or {}), html, text))

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


_REGISTRY = HeaderRegistry()
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def has_control(text: str) -> bool:
    """Whether `text` holds a control character or a line/paragraph separator."""
    return bool(_CONTROL.search(text))


def mailboxes(value: str) -> list[tuple[str, str]] | None:
    """(display name, address) pairs of an RFC 5322 address list as a mail client reads it:
    quoted names unquoted, encoded-words decoded. None when a decoded name holds CR or LF (what a
    header injection through a display name looks like to the reader's software)."""
    try:
        field = _REGISTRY("to", value)
    except ValueError:  # the parser refuses names that decode to CR/LF
        return None
    return [(a.display_name, a.addr_spec) for a in field.addresses]
