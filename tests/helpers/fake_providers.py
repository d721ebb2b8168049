"""Local stand-ins for the mail-service APIs: a real HTTP server on 127.0.0.1 per provider.

Each fake checks what the real provider checks (auth header, JSON / form shape, per-call limits,
required fields) and answers with the provider's documented success and error bodies. Scriptable:

    with FakePostmark() as fake:                      # random port; fake.url → "http://127.0.0.1:N"
        fake.reject("bad@example.org", "invalid")       # per-recipient refusal (provider's own way)
        fake.then(429, headers={"Retry-After": "2"})    # the next call gets this whole-request reply
        fake.then(500)                                  # …and the one after that
        fake.hang(1.0, process=True)                    # next call: accept it, answer after 1 s
        fake.drop()                                     # next call: connection closed, no answer
        ...
        fake.posted["a@example.org"]    # how many times that address arrived in a call
        fake.accepted["a@example.org"]  # how many times the fake accepted it for delivery
        fake.calls                      # every Call (path, headers, payload, recipients, port, status)

Reject kinds: "invalid" (bad address), "inactive" (suppressed at the provider — only Postmark says
so at send time; the others accept and drop later, as the real services do), "transient" (Postmark
only: the first post of that address gets a per-item maintenance error, later posts succeed).
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import json
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl


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


def _bare(addr: str) -> str:
    addr = addr.strip()
    if addr.endswith(">") and "<" in addr:
        return addr[addr.rfind("<") + 1:-1].strip().lower()
    return addr.lower()


def _looks_like_address(addr: str) -> bool:
    local, _, domain = addr.rpartition("@")
    return bool(local) and "." in domain and " " not in addr


# ------------------------------------------------------------------------------------------------
# Postmark: POST /email/batch, X-Postmark-Server-Token, ≤ 500 items, 200 with per-item ErrorCode.
# ------------------------------------------------------------------------------------------------

class FakePostmark(FakeProvider):
    name = "postmark"
    limit = 500
    streams = {"outbound", "broadcast"}

    def error_body(self, status):
        if status == 429:
            return {"ErrorCode": 429, "Message": "Rate limit exceeded."}
        if status == 401:
            return {"ErrorCode": 10, "Message": "Request does not contain a valid Server token."}
        if status == 422:
            return {"ErrorCode": 300, "Message": "Invalid email request."}
        return {"ErrorCode": 0, "Message": "Internal server error."} if status >= 500 else {}

    def peek(self, headers, body):
        try:
            items = json.loads(body)
            return items, [_bare(i.get("To", "")) for i in items]
        except Exception:
            return None, []

    def handle(self, call, headers, body):
        if call.method != "POST" or call.path != "/email/batch":
            return Reply(404, {"ErrorCode": 404, "Message": "Not found."})
        if headers.get("x-postmark-server-token") != self.token:
            return Reply(401, self.error_body(401))
        if "application/json" not in headers.get("content-type", ""):
            return Reply(422, {"ErrorCode": 409, "Message": "JSON request required."})
        try:
            items = json.loads(body)
        except ValueError:
            return Reply(422, {"ErrorCode": 402, "Message": "Received invalid JSON input."})
        if not isinstance(items, list):
            return Reply(422, {"ErrorCode": 403, "Message": "Incompatible JSON input."})
        call.payload = items
        call.recipients = [_bare(str(i.get("To", ""))) for i in items if isinstance(i, dict)]
        if len(items) > self.limit:
            return Reply(422, {"ErrorCode": 410, "Message":
                               f"Too many batch messages: you may send up to {self.limit} messages per call."})
        answer = []
        for item in items:
            answer.append(self._item(item))
        return Reply(200, answer)

    def _item(self, item: dict) -> dict:
        to = str(item.get("To", ""))
        addr = _bare(to)
        missing = [f for f in ("From", "To", "Subject") if not item.get(f)]
        if missing or not (item.get("HtmlBody") or item.get("TextBody")):
            return {"ErrorCode": 300, "Message": f"Invalid email request: missing {missing or ['HtmlBody/TextBody']}."}
        headers = item.get("Headers", [])
        if not isinstance(headers, list) or not all(
                isinstance(x, dict) and set(x) == {"Name", "Value"} for x in headers):
            return {"ErrorCode": 300, "Message": "Invalid email request: Headers must be [{Name, Value}]."}
        if item.get("MessageStream", "outbound") not in self.streams:
            return {"ErrorCode": 1235, "Message": f"The message stream '{item.get('MessageStream')}' was not found."}
        kind = self.kind(addr)
        if kind == "invalid" or not _looks_like_address(addr):
            return {"ErrorCode": 300, "Message": f"Invalid 'To' address: '{addr}'."}
        if kind == "inactive":
            return {"ErrorCode": 406, "Message":
                    "You tried to send to recipient(s) that have been marked as inactive. Found inactive "
                    f"addresses: {addr}. Inactive recipients are ones that have generated a hard bounce, "
                    "a spam complaint, or a manual suppression."}
        if kind == "transient":
            del self.rejections[addr]  # only the first post fails
            return {"ErrorCode": 100, "Message": "Maintenance."}
        self.accept(addr)
        return {"ErrorCode": 0, "Message": "OK", "MessageID": str(uuid.uuid4()),
                "SubmittedAt": "2026-11-20T10:00:00.0000000-05:00", "To": to}


# ------------------------------------------------------------------------------------------------
# SendGrid v3: POST /v3/mail/send, Bearer, ≤ 1000 personalizations, 202 + X-Message-Id.
# ------------------------------------------------------------------------------------------------

class FakeSendGrid(FakeProvider):
    name = "sendgrid"
    limit = 1000
    reserved = {"x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type",
                "content-transfer-encoding", "to", "from", "subject", "reply-to", "cc", "bcc"}

    def error_body(self, status):
        messages = {401: "The provided authorization grant is invalid, expired, or revoked",
                    429: "too many requests", 500: "internal error", 503: "service unavailable"}
        return {"errors": [{"field": None, "message": messages.get(status, "Bad Request"), "help": None}]}

    @staticmethod
    def _error(message, field_name=None):
        return Reply(400, {"errors": [{"message": message, "field": field_name, "help": None}]})

    def peek(self, headers, body):
        try:
            data = json.loads(body)
            return data, [_bare(t["email"]) for p in data["personalizations"] for t in p.get("to", [])]
        except Exception:
            return None, []

    def handle(self, call, headers, body):
        if call.method != "POST" or call.path != "/v3/mail/send":
            return Reply(404, {"errors": [{"field": None, "message": "not found"}]})
        if headers.get("authorization") != f"Bearer {self.token}":
            return Reply(401, self.error_body(401))
        try:
            data = json.loads(body)
        except ValueError:
            return self._error("Bad Request")
        call.payload = data
        ps = data.get("personalizations")
        if not isinstance(ps, list) or not ps:
            return self._error("You must have at least one personalization.", "personalizations")
        call.recipients = [_bare(str(t.get("email", ""))) for p in ps for t in p.get("to", [])]
        if len(ps) > self.limit:
            return self._error("The personalization block is limited to 1000 personalizations per API "
                               f"request. You have provided {len(ps)} personalizations.", "personalizations")
        if len(call.recipients) > self.limit:
            return self._error("There is a limit of 1000 total recipients (to + cc + bcc) per request.",
                               "personalizations")
        seen = set()
        for pi, p in enumerate(ps):
            tos = p.get("to")
            if not isinstance(tos, list) or not tos:
                return self._error("The to parameter is required for all personalization objects.",
                                   f"personalizations.{pi}.to")
            for ti, t in enumerate(tos):
                addr = _bare(str(t.get("email", "")))
                if addr in seen:
                    return self._error("Each email address in the personalization block should be unique "
                                       "between to, cc, and bcc. We found the first duplicate instance of "
                                       f"[{addr}] in the personalizations.{pi}.to field.", f"personalizations.{pi}")
                seen.add(addr)
                if self.kind(addr) == "invalid" or not _looks_like_address(addr):
                    return self._error("Does not contain a valid address.", f"personalizations.{pi}.to.{ti}.email")
            for k, v in (p.get("custom_args") or {}).items():
                if not isinstance(v, str):
                    return self._error("Bad Request")  # SendGrid's cryptic answer to non-string custom_args
        if not (data.get("from") or {}).get("email"):
            return self._error("The from object must be provided for every email send.", "from")
        if not data.get("subject") and not all(p.get("subject") for p in ps):
            return self._error("The subject is required.", "subject")
        content = data.get("content")
        if not isinstance(content, list) or not content:
            return self._error("Unless a valid template_id is provided, the content parameter is required.",
                               "content")
        types = [c.get("type") for c in content]
        if "text/html" in types and "text/plain" in types and types.index("text/plain") > types.index("text/html"):
            return self._error("If present, text/plain and text/html may only be provided once, "
                               "in that order: text/plain first.", "content")
        for k, v in (data.get("headers") or {}).items():
            if k.lower() in self.reserved:
                return self._error(f"The header {k} is reserved and cannot be set.", "headers")
            if not isinstance(v, str):
                return self._error("Invalid type. Expected: string, given: other.", f"headers.{k}")
        for addr in call.recipients:
            self.accept(addr)  # suppressed ("inactive") addresses are accepted and dropped later
        return Reply(202, b"", {"X-Message-Id": base64.urlsafe_b64encode(uuid.uuid4().bytes)[:22].decode()})


# ------------------------------------------------------------------------------------------------
# Mailgun: POST /v3/<domain>/messages, basic auth api:<key>, form fields, ≤ 1000 `to`.
# ------------------------------------------------------------------------------------------------

class FakeMailgun(FakeProvider):
    name = "mailgun"
    limit = 1000

    def __init__(self, token: str = "test-token", domain: str = "mg.example.org"):
        super().__init__(token)
        self.domain = domain
        self.shared_to_calls: list[Call] = []  # calls where recipients would see each other

    def error_body(self, status):
        if status == 401:
            return "Forbidden"
        return {"message": {429: "Too many requests", 500: "Internal Server Error"}.get(status, "error")}

    @staticmethod
    def parse_form(headers: dict, body: bytes) -> list[tuple[str, str]]:
        ctype = headers.get("content-type", "")
        if ctype.startswith("application/x-www-form-urlencoded"):
            return parse_qsl(body.decode(), keep_blank_values=True)
        if ctype.startswith("multipart/form-data"):
            msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                f"Content-Type: {ctype}\r\n\r\n".encode() + body)
            fields = []
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                fields.append((name, part.get_payload(decode=True).decode("utf-8")))
            return fields
        raise ValueError(f"unsupported content type {ctype!r}")

    def peek(self, headers, body):
        try:
            fields = self.parse_form(headers, body)
            return fields, [_bare(v) for k, v in fields if k == "to"]
        except Exception:
            return None, []

    def handle(self, call, headers, body):
        if call.method != "POST" or call.path != f"/v3/{self.domain}/messages":
            return Reply(404, {"message": "Domain not found"})
        expected = "Basic " + base64.b64encode(f"api:{self.token}".encode()).decode()
        if headers.get("authorization") != expected:
            return Reply(401, "Forbidden")
        try:
            fields = self.parse_form(headers, body)
        except ValueError as exc:
            return Reply(400, {"message": str(exc)})
        call.payload = fields
        form: dict[str, list[str]] = {}
        for k, v in fields:
            form.setdefault(k, []).append(v)
        tos = form.get("to", [])
        call.recipients = [_bare(t) for t in tos]
        for required in ("from", "to"):
            if not form.get(required):
                return Reply(400, {"message": f"'{required}' parameter is missing"})
        if not (form.get("text") or form.get("html")):
            return Reply(400, {"message": "Need at least one of 'text', 'html' or 'template' parameters specified"})
        if len(tos) > self.limit:
            return Reply(400, {"message": "Too many recipients"})
        variables = {}
        if "recipient-variables" in form:
            try:
                variables = json.loads(form["recipient-variables"][0])
                assert isinstance(variables, dict)
            except Exception:
                return Reply(400, {"message": "recipient-variables parameter is not a valid JSON"})
        if len(tos) > 1 and not variables:
            self.shared_to_calls.append(call)  # the real Mailgun would send ONE message to all of them
        for addr in call.recipients:
            if self.kind(addr) == "invalid" or not _looks_like_address(addr):
                return Reply(400, {"message": "'to' parameter is not a valid address. please check documentation"})
        for addr in call.recipients:
            self.accept(addr)  # suppressed addresses are accepted and dropped later by Mailgun
        return Reply(200, {"id": f"<{time.strftime('%Y%m%d%H%M%S')}.{self.next_id()}@{self.domain}>",
                           "message": "Queued. Thank you."})


# ------------------------------------------------------------------------------------------------
# Resend: POST /emails/batch, Bearer, ≤ 100 emails, Idempotency-Key, x-batch-validation.
# ------------------------------------------------------------------------------------------------

class FakeResend(FakeProvider):
    name = "resend"
    limit = 100

    def __init__(self, token: str = "re_test_token"):
        super().__init__(token)
        self.idempotency: dict[str, tuple[str, Reply]] = {}  # key → (payload hash, stored reply)
        self.replayed = 0

    def error_body(self, status):
        names = {401: "missing_api_key", 403: "invalid_api_key", 429: "rate_limit_exceeded",
                 500: "application_error", 422: "validation_error"}
        return {"statusCode": status, "name": names.get(status, "application_error"),
                "message": f"error {status}"}

    def peek(self, headers, body):
        try:
            items = json.loads(body)
            return items, [_bare(t) for i in items for t in i.get("to", [])]
        except Exception:
            return None, []

    def handle(self, call, headers, body):
        if call.method != "POST" or call.path != "/emails/batch":
            return Reply(404, {"statusCode": 404, "name": "not_found", "message": "The requested endpoint does not exist."})
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return Reply(401, {"statusCode": 401, "name": "missing_api_key",
                               "message": "Missing API key in the authorization header"})
        if auth != f"Bearer {self.token}":
            return Reply(403, {"statusCode": 403, "name": "invalid_api_key", "message": "API key is invalid"})
        try:
            items = json.loads(body)
        except ValueError:
            return Reply(400, {"statusCode": 400, "name": "validation_error", "message": "Invalid JSON."})
        call.payload = items
        if not isinstance(items, list):
            return Reply(422, {"statusCode": 422, "name": "validation_error", "message": "Expected an array."})
        call.recipients = [_bare(str(t)) for i in items if isinstance(i, dict) for t in i.get("to", [])]
        key = headers.get("idempotency-key")
        digest = hashlib.sha256(body).hexdigest()
        if key is not None:
            if not 1 <= len(key) <= 256:
                return Reply(400, {"statusCode": 400, "name": "invalid_idempotency_key",
                                   "message": "The key must be between 1-256 chars."})
            with self.lock:
                stored = self.idempotency.get(key)
            if stored:
                if stored[0] != digest:
                    return Reply(409, {"statusCode": 409, "name": "invalid_idempotent_request",
                                       "message": "Same idempotency key used with a different request payload."})
                self.replayed += 1
                return stored[1]
        reply = self._process(items, headers.get("x-batch-validation", "strict"))
        if key is not None and reply.status == 200:
            with self.lock:
                self.idempotency[key] = (digest, reply)
        return reply

    def _item_error(self, item) -> str | None:
        if not isinstance(item, dict):
            return "Each email must be an object."
        for f in ("from", "to", "subject"):
            if not item.get(f):
                return f"The `{f}` field is missing."
        if not (item.get("html") or item.get("text")):
            return "Missing `html` or `text` field."
        to = item["to"] if isinstance(item["to"], list) else [item["to"]]
        if len(to) > 50:
            return "Too many recipients in `to`: maximum 50."
        for t in to:
            addr = _bare(str(t))
            if self.kind(addr) == "invalid" or not _looks_like_address(addr) or '"' in str(t):
                return ("Invalid `to` field. The email address needs to follow the `email@example.com` "
                        "or `Name <email@example.com>` format.")
        if "headers" in item and not isinstance(item["headers"], dict):
            return "The `headers` field must be an object."
        return None

    def _process(self, items: list, mode: str) -> Reply:
        if len(items) > self.limit:
            return Reply(422, {"statusCode": 422, "name": "validation_error",
                               "message": f"Too many emails: the batch endpoint takes up to {self.limit}."})
        errors = [(i, e) for i, e in ((i, self._item_error(it)) for i, it in enumerate(items)) if e]
        if errors and mode != "permissive":
            return Reply(422, {"statusCode": 422, "name": "validation_error", "message": errors[0][1]})
        bad = {i for i, _ in errors}
        data = []
        for i, item in enumerate(items):
            if i in bad:
                continue
            for t in item["to"]:
                self.accept(_bare(t))
            data.append({"id": str(uuid.uuid4())})
        body: dict = {"data": data}
        if mode == "permissive":
            body["errors"] = [{"index": i, "message": e} for i, e in errors]
        return Reply(200, body)


FAKES = {"postmark": FakePostmark, "sendgrid": FakeSendGrid, "mailgun": FakeMailgun, "resend": FakeResend}


# ------------------------------------------------------------------------------------------------
# Helpers shared by the transport tests and bench/api_send.py.
# ------------------------------------------------------------------------------------------------

TOKEN_ENV = {"postmark": "POSTMARK_TOKEN", "sendgrid": "SENDGRID_API_KEY",
             "mailgun": "MAILGUN_API_KEY", "resend": "RESEND_API_KEY"}


def outgoing(n: int, *, start: int = 1, html_bytes: int = 0, prefix: str = "reader"):
    """`n` personalised OutgoingMessages to reader<i>@example.org (html padded to `html_bytes`)."""
    from digest.outgoing import OutgoingMessage

    pad = "x" * max(0, html_bytes - 200)
    out = []
    for i in range(start, start + n):
        addr = f"{prefix}{i}@example.org"
        out.append(OutgoingMessage(
            recipient_id=i, to_email=addr, to_name=f"Reader {i}",
            from_addr="Innovation Hub News <news@example.org>", envelope_from="bounces@example.org",
            reply_to="editor@example.org", subject="Learning & Innovation Highlights 2023",
            html=f"<html><body><p>Hello Reader {i}</p><a href=\"https://example.org/u?t={i}\">unsubscribe</a>"
                 f"<!--{pad}--></body></html>",
            text=f"Hello Reader {i}\nUnsubscribe: https://example.org/u?t={i}\n",
            message_id=f"<issue-2023.{i}@example.org>",
            headers=(("List-Unsubscribe", f"<https://example.org/u?t={i}>"),
                     ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
                     ("List-Id", "Innovation Hub News <news.example.org>"))))
    return out


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))


def settings_for(tmp_path, provider: str, fake: FakeProvider | None = None, **extra):
    """Settings from a digest.toml in tmp_path whose [provider] points at the fake."""
    from digest.config import load_settings

    table = dict(extra)
    if fake is not None:
        table.setdefault("base_url", fake.url)
        if provider == "mailgun":
            table.setdefault("domain", getattr(fake, "domain", "mg.example.org"))
    lines = ["[send]", f'transport = "{provider}"', "", f"[{provider}]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
    path = tmp_path / "digest.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_settings(path, env={})
