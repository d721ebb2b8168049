"""The one issue-status model: where each issue stands, from its file, the ledger and the clock.

`digest status`, `digest schedule`, `digest send --due` and the preview all read issue states from
here, so an issue is never "due" in one place and "draft" in another. The states:

- draft        no send_at, never sent
- scheduled    send_at in the future
- due          send_at has passed, not started: the next `digest send --due` sends it
- sending      started and a process is sending it now
- interrupted  started, not finished, nobody sending it now (stopped, killed or paused): a resume
               (`digest send`, or `--due` once send_at has passed) carries on
- sent         the send finished
- failed       the issue cannot be sent as it is: its file does not read, a `--due` run could not
               start it, or only failures that need `digest retry` are left
- expired      not_after passed before it was (completely) sent
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

from digest.clock import format_when, humanize, parse_stamp, require_aware
from digest.errors import DigestError, LedgerError
from digest.store.events import SendFeedback, send_feedback
from digest.store.ledger import Ledger, ledger_path
from digest.store.locks import SendLock
from digest.store.rows import (
    DEFERRED,
    FAILED,
    PENDING,
    SENDING,
    SENT,
    SKIPPED,
    Note,
    RecipientRow,
    SendRow,
)

if TYPE_CHECKING:  # pragma: no cover
    from digest.compose.issue import Issue
    from digest.config import Settings

DRAFT, SCHEDULED, DUE, STATE_SENDING, INTERRUPTED, STATE_SENT, STATE_FAILED, EXPIRED = (
    "draft", "scheduled", "due", "sending", "interrupted", "sent", "failed", "expired")
STATES = (DRAFT, SCHEDULED, DUE, STATE_SENDING, INTERRUPTED, STATE_SENT, STATE_FAILED, EXPIRED)
STARTED = (STATE_SENDING, INTERRUPTED)


@dataclass
class IssueStatus:
    """One issue file and where it stands."""

    slug: str
    path: Path
    state: str
    issue: "Issue | None" = None
    send_at: datetime | None = None
    not_after: datetime | None = None
    send: SendRow | None = None
    sent: int = 0            # recipients the ledger records as sent
    total: int = 0           # recipients in the send's audience (skipped ones not counted)
    open: int = 0            # pending + sending + deferred: what a resume would still send
    failed: int = 0
    failed_transient: int = 0  # failed rows `digest retry` would send again
    reason: str = ""         # failed: why; expired / sent: what happened to the list
    note: Note | None = None
    runnable: bool = False   # a --due run at this moment would send (or resume, or retry) it
    maybe_scheduled: bool = False  # a broken file that mentions send_at: it may be missing its time
    running: str | None = None  # a process is sending it now: its pid ('' if unknown); None = nobody

    @property
    def sort_key(self) -> tuple:
        """By send_at; issues without one (drafts, broken files) last, by slug."""
        when = self.send_at.astimezone(timezone.utc) if self.send_at else datetime.max.replace(tzinfo=timezone.utc)
        return (self.send_at is None, when, self.slug)


def _started_state(status: IssueStatus) -> str:
    return STATE_SENDING if status.running is not None else INTERRUPTED


def classify(status: IssueStatus, now: datetime) -> IssueStatus:
    """Set status.state, .reason and .runnable from its issue times, ledger counts and note."""
    send, note = status.send, status.note
    progress = f"{status.sent}/{status.total} sent"
    status.runnable = False
    if send is not None and send.state == "finished":
        status.state = STATE_SENT
        status.reason = progress + (f", {status.failed} refused" if status.failed else "")
        return status
    if status.not_after is not None and now >= status.not_after:
        status.state = EXPIRED
        status.reason = (f"{progress}, {status.open + status.failed_transient} not sent" if send is not None
                         else "never sent")
        return status
    started = send is not None
    if status.send_at is None or now < status.send_at:
        # A draft, or an issue whose time has not come; a send started by hand is shown as such,
        # but --due never touches an issue before its send_at.
        status.state = (_started_state(status) if started else DRAFT if status.send_at is None else SCHEDULED)
        status.reason = progress if started else ""
        return status
    if note is not None and note.state == STATE_FAILED:
        status.state, status.reason, status.runnable = STATE_FAILED, note.reason, True
        return status
    if not started:
        status.state, status.runnable = DUE, True
        return status
    if status.open == 0 and status.failed_transient:
        # Only failures that need a fix are left: --due does not hammer them, `digest retry` does.
        status.state = STATE_FAILED
        status.reason = f"{progress}; {status.failed_transient} failed and wait for `digest retry {status.slug}`"
        return status
    status.state, status.reason, status.runnable = _started_state(status), progress, True
    return status


_SEND_AT_LINE = re.compile(r"^send_at\s*:", re.MULTILINE)


def broken_status(path: Path, error: DigestError, notes: dict[str, Note]) -> IssueStatus:
    """The status of an issue file that does not load: failed, with the reason."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    return IssueStatus(slug=path.stem, path=path, state=STATE_FAILED, reason=error.message,
                       maybe_scheduled=bool(_SEND_AT_LINE.search(text)), note=notes.get(path.stem))


def status_of(settings: "Settings", path: Path, issue: "Issue", ledger: Ledger | None, notes: dict[str, Note],
              now: datetime) -> IssueStatus:
    """The status of one loaded issue (`ledger` None: nothing was ever sent from this project)."""
    status = IssueStatus(slug=issue.slug, path=path, state=DRAFT, issue=issue, send_at=issue.send_at,
                         not_after=issue.not_after, note=notes.get(issue.slug))
    if ledger is not None:
        status.send = ledger.get_send(issue.slug)
    if status.send is not None:
        counts = ledger.counts(status.send.id)  # type: ignore[union-attr]
        status.sent, status.failed = counts[SENT], counts[FAILED]
        status.open = counts[PENDING] + counts[SENDING] + counts[DEFERRED]
        status.total = sum(counts.values()) - counts[SKIPPED]
        status.failed_transient = ledger.failed_transient(status.send.id)  # type: ignore[union-attr]
        if status.send.state != "finished":
            status.running = SendLock(settings, issue.slug).held_by()
    return classify(status, now)


def open_ledger(settings: "Settings") -> Ledger | None:
    """The project's ledger, read-only, or None when nothing was ever sent (never creates one)."""
    path = ledger_path(settings)
    return Ledger(path, readonly=True) if path.is_file() else None


def issue_statuses(settings: "Settings", now: datetime, *, ledger: Ledger | None = None) -> list[IssueStatus]:
    """Every issue in the issues folder with its status at `now`, sorted by send_at."""
    from digest.compose.issue import issue_paths, load_issue

    require_aware(now)
    own = open_ledger(settings) if ledger is None else None
    book = ledger or own
    try:
        notes = book.notes() if book is not None else {}
        statuses = []
        for path in issue_paths(settings):
            try:
                issue = load_issue(path)
            except DigestError as exc:
                statuses.append(broken_status(path, exc, notes))
                continue
            statuses.append(status_of(settings, path, issue, book, notes, now))
    finally:
        if own is not None:
            own.close()
    return sorted(statuses, key=lambda s: s.sort_key)


def next_scheduled(statuses: list[IssueStatus]) -> IssueStatus | None:
    """The issue a later --due run will send first (scheduled, or started by hand before its send_at)."""
    waiting = [s for s in statuses if s.send_at is not None and not s.runnable
               and s.state in (SCHEDULED, *STARTED)]
    return min(waiting, key=lambda s: s.sort_key) if waiting else None


# --- how a status reads -------------------------------------------------------------------------

def label(status: IssueStatus, now: datetime, local_tz: tzinfo | None = None) -> str:
    """A short label (the preview's state pill, the first line of `digest status`)."""
    def at(value: datetime | None) -> str:
        return format_when(value, local_tz, as_written=False) if value is not None else "?"

    of = f"{status.sent} of {status.total}"
    if status.state == STATE_SENT:
        finished = parse_stamp(status.send.finished_at) if status.send else None
        return f"sent {at(finished)} ({of}" + (f", {status.failed} failed)" if status.failed else ")")
    if status.state == STATE_SENDING:
        return f"sending now (process {status.running or 'unknown'}): {of} sent"
    if status.state == INTERRUPTED:
        return f"interrupted after {of} sent"
    if status.state == SCHEDULED:
        return f"scheduled for {at(status.send_at)}"
    if status.state == DUE:
        return f"due since {at(status.send_at)} (digest send --due sends it)"
    if status.state == EXPIRED:
        return (f"not sent; too late since {at(status.not_after)}" if status.send is None
                else f"expired at {at(status.not_after)}: {status.reason}")
    if status.state == STATE_FAILED:
        return f"failed: {status.reason}"
    return status.state


def describe(status: IssueStatus, now: datetime, local_tz: tzinfo | None = None) -> str:
    """The detail column of `digest schedule` for one issue."""
    def at(value: datetime) -> str:
        return f"{format_when(value, local_tz)}, {humanize(value - now)}"

    if status.state == STATE_FAILED and status.issue is None:
        return status.reason
    if status.state == DRAFT:
        return "no send_at" + (f" · {status.reason}" if status.reason else "")
    if status.state == SCHEDULED:
        text = at(status.send_at)  # type: ignore[arg-type]
        if status.not_after:
            text += f" · not after {format_when(status.not_after, local_tz)}"
        return text
    if status.state == DUE:
        return f"since {at(status.send_at)}"  # type: ignore[arg-type]
    if status.state == EXPIRED:
        return f"{status.reason} · not_after {at(status.not_after)}"  # type: ignore[arg-type]
    if status.state == STATE_SENT:
        finished = parse_stamp(status.send.finished_at) if status.send else None
        return status.reason + (f" · finished {format_when(finished, local_tz, as_written=False)}, "
                                f"{humanize(finished - now)}" if finished else "")
    if status.state in STARTED:
        return _describe_started(status, now, at)
    return _describe_failed(status, at)


def _describe_started(status: IssueStatus, now: datetime, at) -> str:
    text = status.reason
    if status.running is not None:
        return text + f" · sending now (process {status.running or 'unknown'})"
    if status.send_at is not None and now < status.send_at:
        return text + f" · started by hand; --due resumes it from {at(status.send_at)}"
    if status.send_at is None:
        return text + " · started by hand (no send_at): resume with `digest send`"
    return text + " · not running (interrupted or stopped): the next --due run resumes it"


def _describe_failed(status: IssueStatus, at) -> str:
    # failed (the file reads): the reason, progress when a send had started, when it was meant to go
    text = status.reason
    if status.send is not None and not text.startswith(f"{status.sent}/{status.total} sent"):
        text = f"{status.sent}/{status.total} sent · {text}"
    if status.send_at is not None:
        text += f" · send_at {at(status.send_at)}"
    return text


# --- one send in detail: `digest status ISSUE` ----------------------------------------------------

@dataclass
class SendDetails:
    """One issue's send: its status, the ledger counts, and the recipients that need attention."""

    status: IssueStatus
    send: SendRow
    counts: dict[str, int]
    failed_transient: int
    in_doubt: int             # sent again after an interrupted run (possibly received twice)
    rows: list[RecipientRow]  # failed, deferred and in-flight recipients (up to `limit`)
    feedback: "SendFeedback | None" = None  # what came back (bounces, complaints …), once events exist


def _find_send(settings: "Settings", ledger: Ledger, issue_ref: str) -> tuple[SendRow, "Issue | None", Path | None]:
    """The send for a slug or an issue file; the issue too when its file still reads."""
    from digest.compose.issue import find_issue, load_issue

    send = ledger.get_send(issue_ref)
    try:
        path = find_issue(settings, issue_ref)
        issue = load_issue(path)
    except DigestError:
        if send is None:
            raise
        return send, None, None
    send = send or ledger.get_send(issue.slug)
    if send is None:
        raise LedgerError(f"issue '{issue.slug}' has not been sent (no send in {ledger.path}).",
                          f"dry run: digest send {issue.slug}")
    return send, issue, path


def send_details(settings: "Settings", issue_ref: str, now: datetime, *, limit: int | None = 50) -> SendDetails:
    """Everything `digest status ISSUE` shows; LedgerError when nothing was sent from this project."""
    ledger = open_ledger(settings)
    if ledger is None:
        raise LedgerError(f"no ledger at {ledger_path(settings)}: nothing has been sent from this project yet.")
    with ledger:
        send, issue, path = _find_send(settings, ledger, issue_ref)
        notes = ledger.notes()
        if issue is not None and path is not None:
            status = status_of(settings, path, issue, ledger, notes, now)
        else:  # the issue file is gone: what the ledger knows
            status = IssueStatus(slug=send.slug, path=Path(send.slug), state=DRAFT, send=send)
            status.running = SendLock(settings, send.slug).held_by() if send.state != "finished" else None
            status.state = STATE_SENT if send.state == "finished" else _started_state(status)
        counts = ledger.counts(send.id)
        status.sent, status.failed = counts[SENT], counts[FAILED]
        status.total = sum(counts.values()) - counts[SKIPPED]
        return SendDetails(status=status, send=send, counts=counts,
                           failed_transient=ledger.failed_transient(send.id),
                           in_doubt=ledger.in_doubt_sent(send.id),
                           rows=ledger.recipients(send.id, [FAILED, DEFERRED, SENDING], limit=limit),
                           feedback=send_feedback(ledger, send.id))
