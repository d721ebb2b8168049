"""Postmark: POST /email/batch, up to 500 complete messages per call, a result per message.

Each personalised message is its own item of the batch array, so per-recipient bodies need no
substitution tricks. The call answers 200 even when items fail: every item carries ErrorCode
(0 = accepted) and, when accepted, MessageID.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from digest.config import setting
from digest.errors import PermanentTransportError, TransportAuthError
from digest.outgoing import OutgoingMessage
from digest.text import header_safe
from digest.transports.base import SendResult, Status
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

# Item error codes (Postmark API reference, "API error codes").
INVALID_REQUEST = 300   # includes "Invalid 'To' address" — a bad recipient
INACTIVE_RECIPIENT = 406  # hard bounce / spam complaint / manual suppression at Postmark
TRANSIENT_CODES = {100, 429}  # maintenance, rate limit: worth retrying later
ACCOUNT_CODES = {10, 400, 401, 405, 412, 413}  # token, sender signature, account may not send


@dataclass
class PostmarkSettings(HTTPSettings):
    """[postmark] in digest.toml."""

    token_env: str = setting("POSTMARK_TOKEN", "Name of the environment variable holding the Postmark server "
                             "token (sent as X-Postmark-Server-Token).")
    base_url: str = setting(API_URL, "Where calls go: Postmark's API; change it for a proxy or a local test server.")
    message_stream: str = setting("broadcast", "ID of the message stream: Postmark wants newsletters in a "
                                  "broadcast stream.")
    tag: str | None = setting(None, "Optional Postmark Tag on every message.")
    track_opens: bool | None = setting(None, "Postmark open tracking on or off (default: the server's setting).")


def build_request(messages: Sequence[OutgoingMessage], cfg: PostmarkSettings, token: str) -> APIRequest:
    """The /email/batch call for up to 500 messages (pure: no network)."""
    if not 0 < len(messages) <= MAX_BATCH:
        raise ValueError(f"Postmark takes 1–{MAX_BATCH} messages per call, got {len(messages)}")
    items = []
    for m in messages:
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
        items.append(item)
    return APIRequest(
        method="POST", url=f"{cfg.base_url}/email/batch", messages=tuple(messages),
        headers={"X-Postmark-Server-Token": token, "Accept": "application/json",
                 "Content-Type": "application/json"},
        json=items)


def item_result(m: OutgoingMessage, item: dict) -> SendResult:
    """One batch item's answer → the recipient's result."""
    code = int(item.get("ErrorCode", 0) or 0)
    text = str(item.get("Message", ""))
    if code == 0:
        if "inactive addresses" in text:
            # "Message OK, but will not deliver to these inactive addresses: …" — one To per item,
            # so the recipient is the inactive one.
            return SendResult(m.recipient_id, Status.FAILED, code=str(INACTIVE_RECIPIENT),
                              reason=f"Postmark: {text}", suppress=True)
        return SendResult(m.recipient_id, Status.SENT, provider_id=str(item.get("MessageID") or "") or None,
                          code="0", reason=text)
    if code == INACTIVE_RECIPIENT:
        return SendResult(m.recipient_id, Status.FAILED, code=str(code),
                          reason=f"Postmark: {text}", suppress=True)
    if code == INVALID_REQUEST and re.match(r"(Invalid|Error\s+parsing)\s+'To'", text, re.I):
        return SendResult(m.recipient_id, Status.FAILED, code=str(code),
                          reason=f"Postmark: {text}", suppress=True)
    if code in TRANSIENT_CODES:
        return SendResult(m.recipient_id, Status.DEFERRED, code=str(code), reason=f"Postmark: {text}")
    return SendResult(m.recipient_id, Status.FAILED, code=str(code), reason=f"Postmark: {text}")


class PostmarkTransport(HTTPTransport):
    """Send through Postmark's batch email API."""

    name = "postmark"
    label = "Postmark"
    max_batch = MAX_BATCH
    settings_class = PostmarkSettings
    request_builder = staticmethod(build_request)

    def describe(self) -> str:
        """Endpoint and message stream."""
        return f"postmark {self.config.base_url}/email/batch (stream {self.config.message_stream})"

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
        results = [item_result(m, i) for m, i in zip(request.messages, items)]
        codes = {int(i.get("ErrorCode", 0) or 0) for i in items}
        if not any(r.status is Status.SENT for r in results) and codes & ACCOUNT_CODES:
            # Nothing accepted and the reason is the account or sender, not the recipients:
            # stop the run instead of marking every recipient failed.
            first = next(i for i in items if int(i.get("ErrorCode", 0) or 0) in ACCOUNT_CODES)
            text = f"Postmark refused every message (ErrorCode {first.get('ErrorCode')}): {first.get('Message')}"
            if int(first.get("ErrorCode")) == 10:
                raise TransportAuthError(text, f"check that {self.config.token_env} holds a valid server token")
            raise PermanentTransportError(text, "fix the sender signature or account state named above; "
                                                "nothing in this batch was sent")
        return results
