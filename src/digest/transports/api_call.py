"""One API call as data: the request a provider's pure builder returns, the answer detached from
`requests`, and the pure readers every provider shares (excerpts, per-call results, rate-limit waits)."""

from __future__ import annotations

import email.utils
import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from digest.outgoing import OutgoingMessage
from digest.transports.base import SendResult, Status

BODY_EXCERPT = 500  # characters of a provider's answer kept in error messages and ledger reasons


@dataclass(frozen=True)
class APIRequest:
    """One HTTP call, fully described: what a provider's pure builder returns."""

    method: str
    url: str
    messages: tuple[OutgoingMessage, ...]   # the messages this call carries, in result order
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    data: Any = None
    files: Any = None                        # requests 'files' form: multipart/form-data fields
    auth: tuple[str, str] | None = None


@dataclass(frozen=True)
class APIResponse:
    """What came back, detached from `requests` so the readers stay pure and testable."""

    status: int
    headers: Mapping[str, str]
    text: str

    def json(self) -> Any:
        """The body parsed as JSON; ValueError when it is not JSON."""
        return json.loads(self.text)

    def excerpt(self, limit: int = BODY_EXCERPT) -> str:
        """The body on one line, truncated: safe to put in an error message or the ledger."""
        return excerpt(self.text, limit)


def excerpt(text: str, limit: int = BODY_EXCERPT) -> str:
    """`text` on one line, cut to `limit` characters with a marker saying how much was cut."""
    one_line = re.sub(r"\s+", " ", text or "").strip()
    if len(one_line) <= limit:
        return one_line or "(empty body)"
    return f"{one_line[:limit]}… [{len(one_line) - limit} more characters]"


def results_for(messages: Sequence[OutgoingMessage], status: Status, *, code: str | None = None,
                reason: str = "", retry_after: float | None = None) -> list[SendResult]:
    """The same outcome for every message of a call (whole-request answers)."""
    return [SendResult(m.recipient_id, status, code=code, reason=reason, retry_after=retry_after)
            for m in messages]


def wait_from_headers(headers: Mapping[str, str], now: float,
                      reset_header: str | None = None, reset_kind: str = "delta") -> float | None:
    """Seconds to wait before retrying, from Retry-After (seconds or HTTP-date) or a reset header.

    `reset_kind` says how the provider writes its reset header: "delta" (seconds from now, e.g.
    Resend's ratelimit-reset) or "epoch" (a Unix time, e.g. SendGrid's X-RateLimit-Reset; values
    that only make sense as milliseconds are read as milliseconds). None when nothing usable.
    """
    value = headers.get("Retry-After")
    if value:
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                return max(0.0, when.timestamp() - now)
    if reset_header and headers.get(reset_header):
        try:
            number = float(headers[reset_header].strip())
        except ValueError:
            return None
        if reset_kind == "epoch":
            if number > 1e11:  # milliseconds since the epoch
                number /= 1000.0
            return max(0.0, number - now)
        return max(0.0, number)
    return None
