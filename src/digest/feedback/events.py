"""What comes back after a send, in one shape whatever reported it: a provider webhook, a provider's
suppression API or a bounce message in the bounce mailbox.

The event types follow django-anymail's normalised tracking events, narrowed to what digest acts on:

* `bounced`      — the message was not delivered and will not be; `permanent` tells a hard bounce
                   (unknown mailbox: suppressed at once) from a soft one (mailbox full: counted, and
                   suppressed after `[feedback] soft_bounce_limit` consecutive sends);
* `deferred`     — the provider is still retrying (recorded only);
* `complained`   — the reader marked it as spam (suppressed);
* `unsubscribed` — the reader unsubscribed through the provider's own link or list (suppressed);
* `delivered`    — the receiving server accepted it (counted).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

from digest.addresses import address_key
from digest.clock import parse_stamp, utc_now

BOUNCED, DEFERRED, COMPLAINED, UNSUBSCRIBED, DELIVERED = (
    "bounced", "deferred", "complained", "unsubscribed", "delivered")
EVENT_TYPES = (BOUNCED, DEFERRED, COMPLAINED, UNSUBSCRIBED, DELIVERED)
# The events that put an address on the suppression list at once (a soft bounce only after a streak).
SUPPRESSING = (COMPLAINED, UNSUBSCRIBED)


@dataclass(frozen=True)
class FeedbackEvent:
    """One normalised event about one recipient of one message."""

    source: str                     # postmark, sendgrid, mailgun, resend, ses, bounce-mail, or sync:<name>
    event: str                      # one of EVENT_TYPES
    email: str
    occurred_at: datetime           # aware
    event_id: str                   # the provider's id of this event (or a digest of it): replays share it
    permanent: bool = False         # bounced: a hard bounce
    provider_id: str | None = None  # the provider's message id (what the transport recorded per row)
    message_id: str | None = None   # the message's Message-ID header, as digest wrote it
    recipient_id: int | None = None  # the ledger row id digest put in the message's metadata
    reason: str = ""

    @property
    def key(self) -> str:
        """The replay guard: one event about one address, from one source, is recorded once."""
        return f"{self.source}:{self.event_id}:{address_key(self.email)}"

    @property
    def suppresses(self) -> bool:
        """Whether this event alone puts the address on the suppression list."""
        return self.event in SUPPRESSING or (self.event == BOUNCED and self.permanent)

    def suppression_reason(self) -> str:
        """The reason written on the suppression list, e.g. 'bounce: 550 5.1.1 user unknown'."""
        what = {BOUNCED: "bounce", COMPLAINED: "complaint", UNSUBSCRIBED: "unsubscribed"}.get(self.event, self.event)
        return f"{what}: {self.reason}"[:300] if self.reason else what


def payload_id(data: Any) -> str:
    """A stable id for an event that carries none of its own: a digest of its canonical JSON."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "sha256-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def event_time(value: Any) -> datetime:
    """A provider's timestamp (epoch seconds, ISO 8601 or an RFC 2822 date) as an aware UTC time;
    now when it is missing or unreadable (the event still counts)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), timezone.utc)
    text = str(value or "").strip()
    if not text:
        return utc_now()
    try:
        return datetime.fromtimestamp(float(text), timezone.utc)
    except ValueError:
        pass
    parsed = parse_stamp(text)
    if parsed is None:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return utc_now()
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def bare_id(value: Any) -> str | None:
    """A message id without its angle brackets and spaces, or None when empty."""
    text = str(value or "").strip().strip("<>").strip()
    return text or None
