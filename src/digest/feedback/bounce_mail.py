"""Bounce mail → events: delivery status notifications (RFC 3464) and the common non-standard bounce
formats, recognised with flufl.bounce, tied to their recipient by the original message's Message-ID.

flufl.bounce says who bounced and whether it is final; the DSN's per-recipient fields (Status,
Diagnostic-Code) say why. A failure whose status is 4.x.x counts as a soft bounce even when the
reporting server gave up (`Action: failed`), and a warning that delivery is still being tried
(`Action: delayed`) is only a deferral.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message

from flufl.bounce import all_failures

from digest.addresses import address_key
from digest.feedback.events import BOUNCED, DEFERRED, FeedbackEvent, bare_id, event_time

SOURCE = "bounce-mail"
# An enhanced status code (RFC 3463) with the SMTP reply before it when there is one: "550 5.1.1".
_STATUS = re.compile(r"\b(?:([245]\d\d)[ -])?([245])\.(\d{1,3})\.(\d{1,3})\b")
_MESSAGE_ID = re.compile(r"^message-id:[ \t]*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Failure:
    """One recipient's failure as a DSN block (or a non-standard bounce's text) states it."""

    status: str = ""        # the enhanced status code, e.g. 5.1.1
    diagnostic: str = ""    # the remote server's words, e.g. "smtp; 550 5.1.1 user unknown"
    action: str = ""        # failed, delayed, … (empty outside a DSN)


@dataclass(frozen=True)
class BounceReport:
    """What one message in the bounce mailbox says: its events, and whether it was a bounce at all."""

    events: tuple[FeedbackEvent, ...]
    original_message_id: str | None   # the bounced message's Message-ID, when the report quotes it

    @property
    def is_bounce(self) -> bool:
        """Whether any recipient failure was recognised in it."""
        return bool(self.events)


def parse_message(raw: bytes) -> Message:
    """The bytes of a mail as an email.message.Message (the compat32 model flufl.bounce reads)."""
    return email.message_from_bytes(raw)


def read_bounce(raw: bytes) -> BounceReport:
    """The events in one message of the bounce mailbox (none when it is not a bounce)."""
    msg = parse_message(raw)
    temporary, permanent = all_failures(msg)
    if not temporary and not permanent:
        return BounceReport((), None)
    blocks = dsn_blocks(msg)
    original = original_message_id(msg)
    event_id = bare_id(msg.get("Message-ID")) or "sha256-" + hashlib.sha256(raw).hexdigest()[:32]
    when = event_time(msg.get("Date"))
    text_status = _first_status(_texts(msg))
    events = []
    for address, final in sorted([(a, True) for a in permanent] + [(a, False) for a in temporary - permanent]):
        email_address = address.decode("ascii", "replace")
        failure = blocks.get(address_key(email_address)) or Failure(status=text_status[0], diagnostic=text_status[1])
        kind, hard = _kind(final, failure)
        events.append(FeedbackEvent(SOURCE, kind, email_address, when, event_id, permanent=hard,
                                    message_id=original, reason=_reason(failure, hard, kind)))
    return BounceReport(tuple(events), original)


def _kind(final: bool, failure: Failure) -> tuple[str, bool]:
    """(event type, hard?): a 4.x.x status is never a hard bounce, and a delay is not a bounce yet."""
    if not final or failure.action.startswith("delayed"):
        return DEFERRED, False
    return BOUNCED, not failure.status.startswith("4")


def _reason(failure: Failure, hard: bool, kind: str) -> str:
    """'5.1.1 smtp; 550 5.1.1 user unknown', or what kind of failure it was when nothing says why."""
    words = " ".join(part for part in (failure.status, failure.diagnostic) if part)
    if words:
        return " ".join(words.split())[:300]
    if kind == DEFERRED:
        return "delivery delayed (still being retried)"
    return "permanent failure" if hard else "temporary failure"


def dsn_blocks(msg: Message) -> dict[str, Failure]:
    """Each recipient's Status, Diagnostic-Code and Action from the message/delivery-status parts, by
    address key (Original-Recipient and Final-Recipient both map to the block)."""
    found: dict[str, Failure] = {}
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status" or not part.is_multipart():
            continue
        for block in part.get_payload():
            failure = Failure(status=(block.get("Status") or "").strip().split(" ")[0],
                              diagnostic=" ".join(str(block.get("Diagnostic-Code") or "").split()),
                              action=(block.get("Action") or "").strip().lower())
            for header in ("Original-Recipient", "Final-Recipient", "X-Actual-Recipient"):
                address = str(block.get(header) or "").partition(";")[2].strip().strip("<>")
                if address:
                    found.setdefault(address_key(address), failure)
    return found


def original_message_id(msg: Message) -> str | None:
    """The bounced message's Message-ID: from the message/rfc822 or text/rfc822-headers part, else a
    Message-ID header line quoted in the bounce's text (the non-standard formats copy it there)."""
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822" and part.is_multipart():
            inner = part.get_payload(0)
            if inner.get("Message-ID"):
                return bare_id(inner["Message-ID"])
        elif kind == "text/rfc822-headers":
            headers = email.message_from_string(_text_of(part) + "\n\n")
            if headers.get("Message-ID"):
                return bare_id(headers["Message-ID"])
    for text in _texts(msg):
        match = _MESSAGE_ID.search(text)
        if match:
            return bare_id(match.group(1))
    return None


def _texts(msg: Message) -> Iterator[str]:
    """The decoded text parts of the bounce itself (not of a message it attaches)."""
    parts = [msg]
    while parts:
        part = parts.pop(0)
        if part.get_content_type() == "message/rfc822":
            continue
        if part.is_multipart():
            parts[:0] = list(part.get_payload())
        elif part.get_content_maintype() == "text" and part.get_content_type() != "text/rfc822-headers":
            yield _text_of(part)


def _text_of(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if payload is None:
        return str(part.get_payload())
    return payload.decode(part.get_content_charset() or "utf-8", "replace")


def _first_status(texts: Iterator[str]) -> tuple[str, str]:
    """(status, the line it is on) of the first enhanced status code in a non-standard bounce's text."""
    for text in texts:
        for line in text.splitlines():
            match = _STATUS.search(line)
            if match:
                return ".".join(match.group(2, 3, 4)), line.strip()[:300]
    return "", ""
