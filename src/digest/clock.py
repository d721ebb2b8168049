"""The one clock and the one time formatter: aware UTC times, ledger stamps, times shown to people.

Every function that needs "now" takes it (or a `Clock`) as an argument; the CLI passes `utc_now`,
tests pass their own. Times shown to people are in the machine's zone (TZ), with the offset, so the
hour that repeats when clocks go back is never ambiguous.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Callable

Clock = Callable[[], datetime]   # returns an aware datetime
Timer = Callable[[], float]      # monotonic seconds, for durations and rate limits (never shown)


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(timezone.utc)


def require_aware(now: datetime) -> None:
    """Refuse a naive datetime: every comparison with send_at / not_after needs a zone."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime (with a time zone)")


def iso_stamp(at: datetime, timespec: str = "seconds") -> str:
    """UTC ISO 8601 text ending in Z (sorts correctly as text): the ledger's timestamps."""
    return at.astimezone(timezone.utc).isoformat(timespec=timespec).replace("+00:00", "Z")


def now_iso() -> str:
    """The current UTC time as a millisecond ledger stamp."""
    return iso_stamp(utc_now(), "milliseconds")


def log_stamp(at: datetime | None = None) -> str:
    """The local time with its offset, to the second, for log lines: '2026-12-02T09:30:05+01:00'."""
    return (at or utc_now()).astimezone().isoformat(timespec="seconds")


def parse_stamp(text: str | None) -> datetime | None:
    """A ledger stamp (or any ISO 8601 text) as an aware datetime; None when empty or unreadable."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _offset(value: datetime) -> str:
    text = value.strftime("%z")  # +0100
    return f"{text[:3]}:{text[3:]}" if text else ""


def local_zone(value: datetime) -> tzinfo:
    """The machine's zone (TZ) at that instant, from the C library: right on both sides of a change."""
    t = time.localtime(value.timestamp())
    return timezone(timedelta(seconds=t.tm_gmtoff), t.tm_zone)


def format_when(value: datetime, local_tz: tzinfo | None = None, *, as_written: bool = True) -> str:
    """'Sun 2024-10-27 02:30 CET (+01:00)' in the local zone, plus the time as written when its offset differs.

    `local_tz` None means the machine's zone (TZ). The offset always shows which of two equal wall
    clock times (the hour that repeats when clocks go back) is meant.
    """
    local = value.astimezone(local_tz if local_tz is not None else local_zone(value))
    text = f"{local:%a %Y-%m-%d %H:%M} {local.tzname() or ''} ({_offset(local)})".replace("  ", " ")
    if as_written and local.utcoffset() != value.utcoffset():
        text += f" = {value:%Y-%m-%d %H:%M}{_offset(value)} as written"
    return text


def humanize(delta: timedelta) -> str:
    """'in 2 days 3 h', 'in 45 min', '3 h 10 min ago', 'now' (the two largest units, rounded down)."""
    seconds = int(delta.total_seconds())
    future = seconds >= 0
    seconds = abs(seconds)
    if seconds < 60:
        return "now" if seconds < 1 else ("in less than a minute" if future else "less than a minute ago")
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts: list[str] = []
    if days:
        parts.append(f"{days} day{'s' if days != 1 else ''}")
    if hours and len(parts) < 2:
        parts.append(f"{hours} h")
    if minutes and len(parts) < 2 and not days:
        parts.append(f"{minutes} min")
    text = " ".join(parts)
    return f"in {text}" if future else f"{text} ago"
