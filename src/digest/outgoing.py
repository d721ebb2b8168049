"""The message one reader gets, as personalising makes it and a transport takes it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OutgoingMessage:
    """One recipient's fully personalised message, as the send loop hands it to a transport.

    SMTP and outbox transports use `mime` (complete RFC 5322 bytes, CRLF line endings); HTTP API
    transports use the structured parts. Both describe the same message.
    """

    recipient_id: int               # ledger row id (or a running number for test sends)
    to_email: str                   # bare address (may be non-ASCII / IDN)
    to_name: str                    # display name, may be empty
    from_addr: str                  # full From header value, e.g. 'News <news@example.org>'
    envelope_from: str              # bare address used as MAIL FROM / return path
    reply_to: str | None
    subject: str
    html: str
    text: str
    message_id: str                 # '<…@domain>' — also the idempotency anchor
    headers: tuple[tuple[str, str], ...] = ()  # extra headers: List-Unsubscribe, List-Id, …
    mime: bytes | None = None       # filled by the send loop when transport.needs_mime
