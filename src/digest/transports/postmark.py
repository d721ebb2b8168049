"""Postmark: POST /email/batch, up to 500 complete messages per call, a result per message.

Each personalised message is its own item of the batch array, so per-recipient bodies need no
substitution tricks. The call answers 200 even when items fail: every item carries ErrorCode
(0 = accepted) and, when accepted, MessageID. A refusal about the sender or the account (an
unverified From, a missing stream, an account that may not send) stops the run with the batch
still pending; only refusals about the reader fail the reader.

open() checks the configured message stream with the Streams API (stream IDs are per server; a
newsletter belongs in a broadcast stream) and learns who handles its unsubscribes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Sequence
from urllib.parse import quote

from digest.errors import ConfigError, PermanentTransportError, TransportAuthError
from digest.outgoing import OutgoingMessage
from digest.sections import setting
from digest.text import header_safe
from digest.transports.base import AccountRefusedError, SendResult, Status
from digest.transports.http import (
    APIRequest,
    APIResponse,
    HTTPSettings,
    HTTPTransport,
    ascii_domain,
    display_address,
    message_headers,
    sender_address,
)

API_URL = "https://api.postmarkapp.com"
MAX_BATCH = 500  # Postmark's documented limit per /email/batch call
# Size limits (support article "What are the attachment and email size limits?"): 50 MB per batch
# call, 10 MB per message, 5 MB each for TextBody and HtmlBody. Read as 10^6 bytes, the smaller
# reading, and measured on the JSON as it is sent (non-ASCII is escaped: "é" is 6 bytes there).
MAX_CALL_BYTES = 50 * 1000 * 1000
MAX_MESSAGE_BYTES = 10 * 1000 * 1000
MAX_BODY_BYTES = 5 * 1000 * 1000
_JSON_INFLATION = 12  # at most 12 bytes of JSON per character (a surrogate pair: \ud83d\ude00)

# Item error codes (Postmark API reference, "API error codes").
INVALID_REQUEST = 300   # "Invalid email request": about the reader only for 'To' / 'Cc' / 'Bcc'
INACTIVE_RECIPIENT = 406  # hard bounce / spam complaint / manual suppression at Postmark
TRANSIENT_CODES = {100, 429}  # maintenance, rate limit: worth retrying later
_RECIPIENT_300 = re.compile(r"(Invalid|Error\s+parsing)\s+'(To|Cc|Bcc)'", re.I)  # as django-anymail reads it
# Codes about the sender or the account, never the reader, and what to do about each. 1235 (a
# stream that does not exist or cannot send) is not in Postmark's published table: see the docs.
ACCOUNT_HINTS = {
    10: "check that {token_env} holds the server token (API Tokens tab of the Postmark server), "
        "not the account token",
    400: "the From address has no sender signature in Postmark: add it (Sender Signatures) or verify its domain",
    401: "confirm the From address's sender signature (Postmark sent a confirmation email) or verify its domain",
    405: "the Postmark account is not allowed to send (out of credits?): check it in Postmark",
    412: "the Postmark account is pending approval: until then it may only send to its own domain",
    413: "the Postmark account may not send: contact Postmark support",
    1235: "create the stream in Postmark, or set [postmark] message_stream to an existing broadcast stream",
}
FROM_HINT = ("verify the From address as a sender signature, or its domain, in Postmark (Sender Signatures), "
             "or fix [newsletter] from")


@dataclass
class PostmarkSettings(HTTPSettings):
    """[postmark] in digest.toml."""

    token_env: str = setting("POSTMARK_TOKEN", "Name of the environment variable holding the Postmark server "
                             "token (sent as X-Postmark-Server-Token).")
    base_url: str = setting(API_URL, "Where calls go: Postmark's API; change it for a proxy or a local test server.")
    message_stream: str = setting("broadcast", "ID of the broadcast message stream to send through (stream IDs "
                                  "are per Postmark server: see the top right of the stream's page); checked "
                                  "with Postmark before anything is sent.")
    tag: str | None = setting(None, "Optional Postmark Tag on every message.")
    track_opens: bool | None = setting(None, "Postmark open tracking on or off (default: the server's setting).")


def build_item(m: OutgoingMessage, cfg: PostmarkSettings) -> dict:
    """One message as an item of the /email/batch array (pure)."""
    item = {
        "From": sender_address(m.from_addr),
        "To": display_address(m.to_name, ascii_domain(m.to_email)),
        "Subject": header_safe(m.subject),
        "HtmlBody": m.html,
        "TextBody": m.text,
        "MessageStream": cfg.message_stream,
        "Headers": [{"Name": k, "Value": v} for k, v in message_headers(m)],
        "Metadata": {"digest_recipient_id": str(m.recipient_id)},
    }
    if m.reply_to:
        item["ReplyTo"] = sender_address(m.reply_to)
    if cfg.tag:
        item["Tag"] = cfg.tag
    if cfg.track_opens is not None:
        item["TrackOpens"] = cfg.track_opens
    return item


def build_request(messages: Sequence[OutgoingMessage], cfg: PostmarkSettings, token: str,
                  body: bytes | None = None) -> APIRequest:
    """The /email/batch call for up to 500 messages (pure: no network); `body`: the same items
    already serialised (item_json), so the transport encodes each message once."""
    if not 0 < len(messages) <= MAX_BATCH:
        raise ValueError(f"Postmark takes 1–{MAX_BATCH} messages per call, got {len(messages)}")
    return APIRequest(
        method="POST", url=f"{cfg.base_url}/email/batch", messages=tuple(messages),
        headers={"X-Postmark-Server-Token": token, "Accept": "application/json",
                 "Content-Type": "application/json"},
        json=None if body is not None else [build_item(m, cfg) for m in messages], data=body)


def item_json(item: dict) -> str:
    """One item as it goes in the call body: JSON as requests writes `json=` (ASCII-escaped: its
    length is its size in bytes, and what Postmark's 50 MB per call counts)."""
    return json.dumps(item, allow_nan=False)


def pack(sizes: Sequence[int], limit: int = MAX_CALL_BYTES, count: int = MAX_BATCH) -> list[tuple[int, int]]:
    """(start, end) of consecutive calls of at most `count` items and `limit` bytes of JSON array
    ("[" item ", " item … "]") each (pure)."""
    calls: list[tuple[int, int]] = []
    start, used = 0, 2  # the array's brackets
    for i, size in enumerate(sizes):
        if i > start and (i - start >= count or used + 2 + size > limit):
            calls.append((start, i))
            start, used = i, 2
        used += size + (2 if i > start else 0)  # ", " between items
    if sizes:
        calls.append((start, len(sizes)))
    return calls


def too_large(m: OutgoingMessage, cfg: PostmarkSettings) -> str | None:
    """Why Postmark would refuse this message for its size, or None (pure)."""
    for part, body in (("HtmlBody", m.html), ("TextBody", m.text)):
        if len(body) * 4 > MAX_BODY_BYTES and len(body.encode()) > MAX_BODY_BYTES:  # 4: most UTF-8 bytes a char takes
            return f"Postmark takes at most 5 MB of {part}; this message has {len(body.encode()) / 1e6:.1f} MB"
    raw = len(m.html) + len(m.text)
    if raw * _JSON_INFLATION > MAX_MESSAGE_BYTES and len(item_json(build_item(m, cfg))) > MAX_MESSAGE_BYTES:
        return "Postmark takes messages of at most 10 MB; this one is larger"
    return None


def item_kind(item: dict) -> str:
    """What one batch item's answer is about: sent, reader (the address), transient, account, other."""
    code = int(item.get("ErrorCode", 0) or 0)
    text = str(item.get("Message", ""))
    if code == 0:
        return "reader" if "inactive addresses" in text else "sent"
    if code == INACTIVE_RECIPIENT or (code == INVALID_REQUEST and _RECIPIENT_300.match(text)):
        return "reader"
    if code in TRANSIENT_CODES:
        return "transient"
    if code in ACCOUNT_HINTS or code == INVALID_REQUEST:  # any other 300 is about the sender or message
        return "account"
    return "other"


def item_result(m: OutgoingMessage, item: dict) -> SendResult:
    """One batch item's answer → the recipient's result."""
    code = int(item.get("ErrorCode", 0) or 0)
    text = f"Postmark: {item.get('Message', '')}"
    kind = item_kind(item)
    if kind == "sent":
        return SendResult(m.recipient_id, Status.SENT, provider_id=str(item.get("MessageID") or "") or None,
                          code="0", reason=text[len("Postmark: "):])
    if kind == "reader":  # "Message OK, but will not deliver to these inactive addresses", 406, bad 'To'
        return SendResult(m.recipient_id, Status.FAILED, code=str(code or INACTIVE_RECIPIENT), reason=text,
                          suppress=True)
    if kind == "transient":
        return SendResult(m.recipient_id, Status.DEFERRED, code=str(code), reason=text)
    # Not the reader's fault: `digest retry` sends it again once the cause is fixed.
    return SendResult(m.recipient_id, Status.FAILED, code=str(code), reason=text, retryable=kind == "account")


def account_error(item: dict, token_env: str) -> TransportAuthError:
    """The error that stops the run when Postmark refused the sender or the account."""
    code = int(item.get("ErrorCode", 0) or 0)
    message = str(item.get("Message", ""))
    text = f"Postmark refused every message of the batch (ErrorCode {code}): {message}"
    if code == 10:
        return TransportAuthError(text, ACCOUNT_HINTS[10].format(token_env=token_env))
    if code == INVALID_REQUEST:
        hint = FROM_HINT if "'From'" in message else "fix the message or setting the error names"
        return AccountRefusedError(text, hint + "; everyone in the batch is still pending")
    return AccountRefusedError(text, ACCOUNT_HINTS[code] + "; everyone in the batch is still pending")


class PostmarkTransport(HTTPTransport):
    """Send through Postmark's batch email API."""

    name = "postmark"
    label = "Postmark"
    max_batch = MAX_BATCH
    settings_class = PostmarkSettings
    request_builder = staticmethod(build_request)
    unsubscribes: str | None = None  # after open(): "postmark" or "digest" (who handles the stream's)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._parts: dict[int, str] = {}  # id(message) → its serialised item, from split() to build_request()

    def describe(self) -> str:
        """Endpoint, message stream and, once open, who handles its unsubscribes."""
        who = f", unsubscribes handled by {self.unsubscribes.title() if self.unsubscribes == 'postmark' else 'digest'}" \
            if self.unsubscribes else ""
        return f"postmark {self.config.base_url}/email/batch (stream {self.config.message_stream}{who})"

    def open(self) -> None:
        """Open the session, then check the message stream with the Streams API."""
        first = self._session is None
        super().open()
        if first and self.token != "POSTMARK_API_TEST":  # Postmark's test token has no streams to ask about
            self.unsubscribes = check_stream(self)

    def split(self, messages: Sequence[OutgoingMessage]) -> list[list[OutgoingMessage]]:
        """Calls of at most 500 messages and 50 MB of JSON each (each message serialised once)."""
        parts = [item_json(build_item(m, self.config)) for m in messages]
        self._parts = {id(m): part for m, part in zip(messages, parts)}
        return [list(messages[a:b]) for a, b in pack([len(p) for p in parts], count=max(1, self.max_batch))]

    def build_request(self, messages: Sequence[OutgoingMessage]) -> APIRequest:
        """The call for one of split()'s chunks, from the items it already serialised."""
        parts = [self._parts.pop(id(m), None) or item_json(build_item(m, self.config)) for m in messages]
        return build_request(messages, self.config, self.token, ("[" + ", ".join(parts) + "]").encode("ascii"))

    def cannot_deliver(self, msg: OutgoingMessage) -> tuple[str, str] | None:
        """The shared address rules, then Postmark's size limits per message."""
        why = too_large(msg, self.config)
        return super().cannot_deliver(msg) or (("too_large", why) if why else None)

    def read_results(self, request: APIRequest, response: APIResponse) -> list[SendResult]:
        """200 → an array of item answers in request order; 4xx → the whole call was refused."""
        if response.status != 200:
            # 422 {ErrorCode, Message}: malformed call, too many messages, … — nothing was sent.
            raise self.permanent(request, response,
                                 "fix the setting or message the error names; nothing in this batch was sent")
        try:
            items = response.json()
        except ValueError:
            raise self.unreadable(request, response, "the body is not JSON")
        if not isinstance(items, list) or len(items) != len(request.messages) \
                or not all(isinstance(i, dict) for i in items):
            raise self.unreadable(request, response,
                                  f"the answer does not hold one item per message ({len(request.messages)})")
        kinds = [item_kind(i) for i in items]
        if "account" in kinds and "sent" not in kinds:
            # Nothing accepted and the reason is the sender or the account, not the readers:
            # stop the run with the batch pending instead of failing everyone in it.
            raise account_error(items[kinds.index("account")], self.config.token_env)
        return [item_result(m, i) for m, i in zip(request.messages, items)]


# -- message streams (Postmark API reference, "Message Streams API") ------------------------------

def _streams_headers(transport: PostmarkTransport) -> dict[str, str]:
    return {"X-Postmark-Server-Token": transport.token, "Accept": "application/json"}


def check_stream(transport: PostmarkTransport) -> str:
    """Check that [postmark] message_stream names a broadcast stream of this server; return who
    handles its unsubscribes ("postmark" when Postmark adds its own link and headers, else "digest")."""
    sid = transport.config.message_stream
    where = f"{transport.settings.where('postmark')} message_stream = {sid!r}"
    response = transport.api_get(f"/message-streams/{quote(sid, safe='')}", _streams_headers(transport))
    if response.status == 404:
        raise ConfigError(f"{where}: this Postmark server has no such message stream (its streams: "
                          f"{list_streams(transport)}).",
                          "set message_stream to the ID of your broadcast stream (top right of the stream's "
                          "page in Postmark), or create a broadcast stream")
    try:
        stream = response.json() if response.status == 200 else None
    except ValueError:
        stream = None
    if not isinstance(stream, dict):
        raise PermanentTransportError(f"Postmark answered HTTP {response.status} when asked about stream {sid!r}: "
                                      f"{response.excerpt()}", "check [postmark] message_stream and base_url")
    kind = str(stream.get("MessageStreamType", ""))
    if stream.get("ArchivedAt"):
        raise ConfigError(f"{where}: the stream is archived in Postmark.", "unarchive it or name another one")
    if kind != "Broadcasts":
        article = "an inbound stream, which cannot send" if kind == "Inbound" else \
            "a transactional stream; Postmark's terms want newsletters in a broadcast stream"
        raise ConfigError(f"{where}: this is {article}.",
                          f"set message_stream to a broadcast stream (streams of this server: {list_streams(transport)})")
    handling = (stream.get("SubscriptionManagementConfiguration") or {}).get("UnsubscribeHandlingType")
    return "postmark" if handling == "Postmark" else "digest"


def list_streams(transport: PostmarkTransport) -> str:
    """'broadcasts (Broadcasts), outbound (Transactional)': this server's streams, for messages."""
    response = transport.api_get("/message-streams?MessageStreamType=All&IncludeArchivedStreams=false",
                                 _streams_headers(transport))
    try:
        streams = response.json().get("MessageStreams") or []
        return ", ".join(sorted(f"{s['ID']} ({s['MessageStreamType']})" for s in streams)) or "none"
    except (ValueError, AttributeError, KeyError, TypeError):
        return "Postmark did not list them"


# -- the stream's suppressions (Postmark API reference, "Suppressions API") ------------------------

SUPPRESSION_REASONS = {"ManualSuppression": "unsubscribe", "HardBounce": "bounce", "SpamComplaint": "complaint"}


@dataclass(frozen=True)
class PostmarkSuppression:
    """An address Postmark will not send to in the stream, and why, in digest's words."""

    address: str
    reason: str       # unsubscribe (Postmark's link or a manual one), bounce, complaint
    origin: str       # Recipient, Customer or Admin, as Postmark records it
    created_at: str


def stream_suppressions(transport: PostmarkTransport, since: str | None = None) -> list[PostmarkSuppression]:
    """The configured stream's suppressions (since a YYYY-MM-DD date, if given): the readers who used
    Postmark's own unsubscribe link, hard bounces and complaints, for digest's suppression list."""
    sid = quote(transport.config.message_stream, safe="")
    query = f"?fromdate={quote(since)}" if since else ""
    response = transport.api_get(f"/message-streams/{sid}/suppressions/dump{query}", _streams_headers(transport))
    try:
        rows = response.json().get("Suppressions") if response.status == 200 else None
    except (ValueError, AttributeError):
        rows = None
    if not isinstance(rows, list):
        raise PermanentTransportError(f"Postmark answered HTTP {response.status} for the suppressions of stream "
                                      f"{transport.config.message_stream!r}: {response.excerpt()}",
                                      "check [postmark] message_stream and the server token")
    return [PostmarkSuppression(str(r.get("EmailAddress", "")).strip(),
                                SUPPRESSION_REASONS.get(str(r.get("SuppressionReason")), "suppressed"),
                                str(r.get("Origin", "")), str(r.get("CreatedAt", "")))
            for r in rows if isinstance(r, dict) and r.get("EmailAddress")]
