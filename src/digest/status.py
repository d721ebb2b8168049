"""Where an issue stands — draft, scheduled, due, sending, sent — from its file and the send ledger."""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from digest.errors import DigestError

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings
    from digest.compose.issue import Issue


@dataclass(frozen=True)
class IssueState:
    """A short machine-readable kind (for styling) and a label for people."""

    kind: str   # draft | scheduled | due | expired | sending | stopped | sent | unknown
    label: str


def _when(value: dt.datetime | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    offset = value.utcoffset()
    if offset is None or not offset:
        zone = "UTC" if offset is not None else ""
    else:
        zone = value.strftime("%z")
        zone = f"{zone[:3]}:{zone[3:5]}"
    return f"{value:%Y-%m-%d %H:%M} {zone}".strip()


class SendStates:
    """Reads the state of each issue's send from the ledger, read-only, once per listing."""

    def __init__(self, settings: "Settings"):
        self.error: str | None = None
        self._ledger = None
        try:
            from digest.store.ledger import Ledger, ledger_path

            path = ledger_path(settings)
            if path.is_file():  # no ledger yet: nothing was ever sent; never create one from a preview
                self._ledger = Ledger(path, readonly=True)
        except (DigestError, sqlite3.Error, ImportError, AttributeError, TypeError) as exc:
            # The ledger is another module's business: a preview still lists issues when it fails.
            self.error = f"cannot read the send ledger: {exc}"

    def send_of(self, slug: str):
        """(SendRow, counts) of this issue's send, or (None, None) when it never started."""
        if self._ledger is None:
            return None, None
        try:
            row = self._ledger.get_send(slug)
            if row is None:
                return None, None
            return row, self._ledger.counts(row.id)
        except (DigestError, sqlite3.Error, AttributeError, TypeError) as exc:
            self.error = f"cannot read the send ledger: {exc}"
            return None, None

    def close(self) -> None:
        """Close the ledger connection."""
        if self._ledger is not None:
            self._ledger.close()

    def __enter__(self) -> "SendStates":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def issue_state(issue: "Issue", send, counts: dict | None, now: dt.datetime) -> IssueState:
    """The state of one issue given its ledger send row (or None) and the current time."""
    if send is not None:
        counts = counts or {}
        sent = counts.get("sent", 0)
        total = getattr(send, "audience", 0) or sum(counts.values())
        failed = counts.get("failed", 0)
        state = getattr(send, "state", "")
        if state == "finished":
            extra = f", {failed} failed" if failed else ""
            return IssueState("sent", f"sent {_when(send.finished_at)} ({sent} of {total}{extra})")
        if state == "stopped":
            return IssueState("stopped", f"stopped after {sent} of {total} sent")
        return IssueState("sending", f"sending: {sent} of {total} sent")
    if issue.not_after is not None and issue.not_after <= now:
        return IssueState("expired", f"not sent; too late since {_when(issue.not_after)}")
    if issue.send_at is not None:
        if issue.send_at <= now:
            return IssueState("due", f"due since {_when(issue.send_at)} (digest send --due sends it)")
        return IssueState("scheduled", f"scheduled for {_when(issue.send_at)}")
    return IssueState("draft", "draft")


def default_now() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(dt.timezone.utc)


Clock = Callable[[], dt.datetime]
