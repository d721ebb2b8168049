"""Scheduled sends: each issue's state (from its file and the ledger) and the `digest send --due` run.

digest has no daemon: cron or a systemd timer runs `digest send --due` every few minutes. One run
- takes an exclusive OS lock (fcntl.flock on <state>/send-due.lock; the kernel drops it if the
  process dies), so overlapping runs never race — the second one reports "another run is in
  progress" and leaves;
- sends (or resumes) every issue whose `send_at` has passed and whose send is not complete, never one
  whose `not_after` has passed; `not_after` is checked again between batches, and a send that reaches
  it stops there, leaving the rest of the list unsent (state: expired);
- records an issue that cannot start (it does not render, the list is unreadable, a merge field is
  missing, the transport refuses the login) as failed, with the reason, in a small table of its own
  in the ledger's SQLite file; the next run tries again, so fixing the issue is enough.

The per-issue send lock and the ledger's committed claims (sendjob.py, ledger.py) stay the second line
of defence: even without this lock, two processes could not send one recipient the same issue twice.

Every function takes the time as an aware `now` (or a clock returning aware datetimes): the CLI passes
the real clock, tests pass their own.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from digest.store.locks import FileLock
from digest.errors import DigestError, SendLockedError
from digest.store.ledger import DEFERRED, FAILED, PENDING, SENDING, SENT, SKIPPED, Ledger, SendRow, ledger_path

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings
    from digest.compose.issue import Issue
    from digest.delivery.loop import RunOptions, RunStats
    from digest.delivery.job import RunReport

# Issue states, as `digest schedule` shows them.
DRAFT, SCHEDULED, DUE, STATE_SENDING, STATE_SENT, STATE_FAILED, EXPIRED = (
    "draft", "scheduled", "due", "sending", "sent", "failed", "expired")

Clock = Callable[[], datetime]


# --- schedule.py's own table in the ledger file ---------------------------------------------------

NOTES_SQL = """
CREATE TABLE IF NOT EXISTS schedule_notes (
    slug        TEXT PRIMARY KEY,
    state       TEXT NOT NULL,     -- failed (could not start; retried every run) | expired (reported once)
    reason      TEXT NOT NULL,
    first_at    TEXT NOT NULL,     -- when a --due run first saw this state
    updated_at  TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class Note:
    """What a `--due` run recorded about one issue that the send ledger cannot tell."""

    slug: str
    state: str
    reason: str
    first_at: str
    updated_at: str


class ScheduleLedger(Ledger):
    """The ledger plus the `schedule_notes` table (same SQLite file, same connection).

    The table is created with IF NOT EXISTS on a writable open, so it needs no ledger migration and a
    ledger written by an older digest stays readable.
    """

    def __init__(self, path: Path | str, *, readonly: bool = False, timeout: float = 5.0):
        super().__init__(path, readonly=readonly, timeout=timeout)
        if not readonly:
            self._write("cannot create the schedule table", lambda: self._db.execute(NOTES_SQL))

    def notes(self) -> dict[str, Note]:
        """Every note, by slug (empty when no --due run has written any yet)."""
        if not self._read("SELECT 1 FROM sqlite_master WHERE type='table' AND name='schedule_notes'"):
            return {}
        rows = self._read("SELECT slug, state, reason, first_at, updated_at FROM schedule_notes")
        return {r[0]: Note(*r) for r in rows}

    def set_note(self, slug: str, state: str, reason: str, at: datetime) -> None:
        """Record (or update) the note for `slug`; first_at is kept while the state stays the same."""
        stamp = _stamp(at)

        def do():
            self._db.execute(
                "INSERT INTO schedule_notes (slug, state, reason, first_at, updated_at) VALUES (?,?,?,?,?) "
                "ON CONFLICT(slug) DO UPDATE SET reason=excluded.reason, updated_at=excluded.updated_at, "
                "first_at=CASE WHEN state=excluded.state THEN first_at ELSE excluded.first_at END, "
                "state=excluded.state", (slug, state, reason, stamp, stamp))
        self._write("cannot record the schedule note", do)

    def clear_note(self, slug: str) -> None:
        """Forget the note for `slug` (the issue started sending)."""
        self._write("cannot clear the schedule note",
                    lambda: self._db.execute("DELETE FROM schedule_notes WHERE slug=?", (slug,)))


def _stamp(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


# --- the lock for a whole --due run ---------------------------------------------------------------

class DueLock(FileLock):
    """The lock for one whole `--due` run: <state>/send-due.lock."""

    def __init__(self, settings: "Settings"):
        super().__init__(settings.path("state") / "send-due.lock",
                         hint="make the state folder ([paths] state) writable by the user cron runs as")

    def acquire(self) -> bool:
        """Take the lock; False (and .holder set) when another process holds it. Never waits."""
        if self.try_acquire():
            return True
        self.holder = self.holder or "unknown"
        return False


# --- each issue's state ---------------------------------------------------------------------------

@dataclass
class Entry:
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


def classify(entry: Entry, now: datetime, failed_transient: int = 0) -> Entry:
    """Set entry.state, .reason and .runnable from its issue times, ledger counts and note."""
    send, note = entry.send, entry.note
    progress = f"{entry.sent}/{entry.total} sent"
    entry.runnable = False
    if send is not None and send.state == "finished":
        entry.state = STATE_SENT
        entry.reason = progress + (f", {entry.failed} refused" if entry.failed else "")
        return entry
    if entry.not_after is not None and now >= entry.not_after:
        entry.state = EXPIRED
        entry.reason = (f"{progress}, {entry.open + failed_transient} not sent" if send is not None
                        else "never sent")
        return entry
    started = send is not None
    if entry.send_at is None or now < entry.send_at:
        # A draft, or an issue whose time has not come; a send started by hand is shown as such,
        # but --due never touches an issue before its send_at.
        entry.state = (STATE_SENDING if started else DRAFT if entry.send_at is None else SCHEDULED)
        entry.reason = progress if started else ""
        return entry
    if note is not None and note.state == STATE_FAILED:
        entry.state, entry.reason, entry.runnable = STATE_FAILED, note.reason, True
        return entry
    if not started:
        entry.state, entry.runnable = DUE, True
        return entry
    if entry.open == 0 and failed_transient:
        # Only failures that need a fix are left: --due does not hammer them, `digest retry` does.
        entry.state = STATE_FAILED
        entry.reason = (f"{progress}; {failed_transient} failed and wait for `digest retry {entry.slug}`")
        return entry
    entry.state, entry.reason, entry.runnable = STATE_SENDING, progress, True
    return entry


_SEND_AT_LINE = re.compile(r"^send_at\s*:", re.MULTILINE)


def schedule_entries(settings: "Settings", now: datetime, *, ledger: ScheduleLedger | None = None) -> list[Entry]:
    """Every issue in the issues folder with its state at `now`, sorted by send_at."""
    from digest.compose.issue import issue_paths, load_issue
    from digest.delivery.job import SendLock

    _require_aware(now)
    own = None
    if ledger is None and ledger_path(settings).exists():
        ledger = own = ScheduleLedger(ledger_path(settings), readonly=True)
    try:
        notes = ledger.notes() if ledger is not None else {}
        entries = []
        for path in issue_paths(settings):
            try:
                issue = load_issue(path)
            except DigestError as exc:
                try:
                    text = path.read_text(encoding="utf-8", errors="replace")
                except OSError:
                    text = ""
                entries.append(Entry(slug=path.stem, path=path, state=STATE_FAILED, reason=exc.message,
                                     maybe_scheduled=bool(_SEND_AT_LINE.search(text)),
                                     note=notes.get(path.stem)))
                continue
            entry = Entry(slug=issue.slug, path=path, state=DRAFT, issue=issue, send_at=issue.send_at,
                          not_after=issue.not_after, note=notes.get(issue.slug))
            failed_transient = 0
            if ledger is not None:
                entry.send = ledger.get_send(issue.slug)
                if entry.send is not None:
                    counts = ledger.counts(entry.send.id)
                    entry.sent, entry.failed = counts[SENT], counts[FAILED]
                    entry.open = counts[PENDING] + counts[SENDING] + counts[DEFERRED]
                    entry.total = sum(counts.values()) - counts[SKIPPED]
                    failed_transient = ledger.failed_transient(entry.send.id)
                    if entry.send.state != "finished":
                        entry.running = SendLock(settings, issue.slug).held_by()
            entries.append(classify(entry, now, failed_transient))
    finally:
        if own is not None:
            own.close()
    return sorted(entries, key=lambda e: e.sort_key)


def next_scheduled(entries: list[Entry]) -> Entry | None:
    """The issue a later --due run will send first (scheduled, or started by hand before its send_at)."""
    waiting = [e for e in entries if e.send_at is not None and not e.runnable
               and e.state in (SCHEDULED, STATE_SENDING)]
    return min(waiting, key=lambda e: e.sort_key) if waiting else None


# --- how times are shown --------------------------------------------------------------------------

def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime (with a time zone)")


def _offset(value: datetime) -> str:
    text = value.strftime("%z")  # +0100
    return f"{text[:3]}:{text[3:]}" if text else ""


def _local_zone(value: datetime) -> tzinfo:
    """The machine's zone (TZ) at that instant, from the C library: right on both sides of a change."""
    t = time.localtime(value.timestamp())
    return timezone(timedelta(seconds=t.tm_gmtoff), t.tm_zone)


def format_when(value: datetime, local_tz: tzinfo | None = None, *, as_written: bool = True) -> str:
    """'Sun 2024-10-27 02:30 CET' in the local zone, plus the time as written when its offset differs.

    `local_tz` None means the machine's zone (TZ). The offset always shows which of two equal wall
    clock times (the hour that repeats when clocks go back) is meant.
    """
    local = value.astimezone(local_tz if local_tz is not None else _local_zone(value))
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


def describe(entry: Entry, now: datetime, local_tz: tzinfo | None = None) -> str:
    """The detail column of `digest schedule` for one issue."""
    def at(value: datetime) -> str:
        return f"{format_when(value, local_tz)}, {humanize(value - now)}"

    if entry.state == STATE_FAILED and entry.issue is None:
        return entry.reason
    if entry.state == DRAFT:
        return "no send_at" + (f" · {entry.reason}" if entry.reason else "")
    if entry.state == SCHEDULED:
        text = at(entry.send_at)  # type: ignore[arg-type]
        if entry.not_after:
            text += f" · not after {format_when(entry.not_after, local_tz)}"
        return text
    if entry.state == DUE:
        return f"since {at(entry.send_at)}"  # type: ignore[arg-type]
    if entry.state == EXPIRED:
        return f"{entry.reason} · not_after {at(entry.not_after)}"  # type: ignore[arg-type]
    if entry.state == STATE_SENT:
        finished = _parse_stamp(entry.send.finished_at) if entry.send else None
        return entry.reason + (f" · finished {format_when(finished, local_tz, as_written=False)}, "
                               f"{humanize(finished - now)}" if finished else "")
    if entry.state == STATE_SENDING:
        text = entry.reason
        if entry.running is not None:
            return text + f" · sending now (process {entry.running or 'unknown'})"
        if entry.send_at is not None and now < entry.send_at:
            text += f" · started by hand; --due resumes it from {at(entry.send_at)}"
        elif entry.send_at is None:
            text += " · started by hand (no send_at): resume with `digest send`"
        else:
            text += " · not running (interrupted or stopped): the next --due run resumes it"
        return text
    # failed (the file reads): the reason, progress when a send had started, when it was meant to go
    text = entry.reason
    if entry.send is not None and not text.startswith(f"{entry.sent}/{entry.total} sent"):
        text = f"{entry.sent}/{entry.total} sent · {text}"
    if entry.send_at is not None:
        text += f" · send_at {at(entry.send_at)}"
    return text


def _parse_stamp(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


# --- the --due run --------------------------------------------------------------------------------

SENT_OK, INCOMPLETE, FAILED_TO_START, EXPIRED_NOW, BUSY, STOPPED = (
    "sent", "incomplete", "failed", "expired", "busy", "stopped")


@dataclass
class DueResult:
    """What a --due run did with one issue."""

    slug: str
    outcome: str          # sent | incomplete | failed | expired | busy | stopped
    message: str
    report: "RunReport | None" = None

    @property
    def ok(self) -> bool:
        """Whether this outcome lets the run exit 0."""
        return self.outcome in (SENT_OK, BUSY)


@dataclass
class DueRun:
    """The whole --due run; `busy` is the pid of another run holding the lock (nothing was done)."""

    results: list[DueResult] = field(default_factory=list)
    busy: str | None = None
    next: Entry | None = None
    broken_drafts: list[Entry] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when everything due was sent (or nothing was due, or another run holds the lock);
        1 when an issue could not start (render, list, settings, login); 3 when a send ended with
        failed, deferred or unsent recipients (stopped at not_after or by a signal)."""
        if any(r.outcome == FAILED_TO_START for r in self.results):
            return 1
        if any(not r.ok for r in self.results):
            return 3
        return 0


def real_clock() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(timezone.utc)


def run_due(settings: "Settings", now: datetime, options: "RunOptions", *,
            clock: Clock | None = None, log: Callable[[str], None] = lambda text: None,
            progress: Callable[[Entry, "RunStats"], None] | None = None,
            on_result: Callable[[DueResult], None] | None = None,
            stop: threading.Event | None = None, transport: str | None = None) -> DueRun:
    """Send every issue that is due at `now` (see the module docstring); never prompts, never prints.

    `clock` gives the time for the checks made later in the run (not_after between batches); by
    default `now` plus the real time elapsed since the call. `log` receives one-line progress notes,
    `on_result` each issue's result as soon as it is known; `stop` (set by a SIGTERM handler) ends the run between batches, leaving the rest pending.
    """
    _require_aware(now)
    if clock is None:
        started = time.monotonic()
        clock = lambda: now + timedelta(seconds=time.monotonic() - started)  # noqa: E731
    stop = stop or threading.Event()
    lock = DueLock(settings)
    if not lock.acquire():
        return DueRun(busy=lock.holder)
    try:
        path = ledger_path(settings)
        book = ScheduleLedger(path) if path.exists() else None
        try:
            return _run_due(settings, now, options, clock, log, progress, on_result, stop, transport, book)
        finally:
            if book is not None:
                book.close()
    finally:
        lock.release()


def _run_due(settings, now, options, clock, log, progress, on_result, stop, transport,
             book: ScheduleLedger | None) -> DueRun:
    entries = schedule_entries(settings, now, ledger=book)
    run = DueRun(next=next_scheduled(entries))

    def add(result: DueResult) -> None:
        run.results.append(result)
        if on_result is not None:
            on_result(result)

    def ledger_book() -> ScheduleLedger:
        nonlocal book
        if book is None:
            book = ScheduleLedger(ledger_path(settings))
        return book

    def note(slug: str, state: str, reason: str) -> str:
        """Record a note; returns an extra sentence when even that failed (the ledger is unwritable)."""
        try:
            ledger_book().set_note(slug, state, reason, clock())
        except DigestError as exc:
            return f" (and the note could not be recorded: {exc.message})"
        return ""

    for entry in entries:
        if stop.is_set() and entry.runnable:
            add(DueResult(entry.slug, STOPPED,
                          "not started: the run was stopped by a signal; the next run sends it"))
            continue
        if entry.issue is None:  # a broken issue file
            if entry.maybe_scheduled:
                add(DueResult(entry.slug, FAILED_TO_START,
                              f"cannot read the issue file, so it cannot be sent: {entry.reason}"))
            else:
                run.broken_drafts.append(entry)
            continue
        if entry.state == EXPIRED:
            if entry.send_at is None or (entry.note is not None and entry.note.state == EXPIRED):
                continue  # never scheduled, or already reported: one report per expiry
            reason = (f"not_after {entry.not_after.isoformat()} passed before it was sent: "  # type: ignore[union-attr]
                      f"{entry.reason}")
            add(DueResult(entry.slug, EXPIRED_NOW, reason + note(entry.slug, EXPIRED, reason)))
            continue
        if not entry.runnable:
            continue
        add(_send_one(settings, entry, options, clock, log, progress, stop, transport, note, ledger_book))
    if book is not None:
        # The state after the run, so the "next" line is right even when an issue just went out.
        run.next = next_scheduled(schedule_entries(settings, clock(), ledger=book)) or run.next
    return run


def _send_one(settings, entry: Entry, options, clock: Clock, log, progress, stop: threading.Event,
              transport, note, ledger_book) -> DueResult:
    from digest.delivery.job import SendJob

    slug = entry.slug
    moment = clock()
    if entry.not_after is not None and moment >= entry.not_after:  # time passed while earlier issues went out
        reason = f"not_after {entry.not_after.isoformat()} passed before it could start"
        return DueResult(slug, EXPIRED_NOW, reason + note(slug, EXPIRED, reason))
    what = "resuming" if entry.send is not None else "sending"
    log(f"{slug}: {what} (send_at {entry.send_at.isoformat() if entry.send_at else '-'}"
        + (f", not_after {entry.not_after.isoformat()}" if entry.not_after else "") + ")")
    reached_not_after = False

    def watch(stats: "RunStats") -> None:
        # Called by the send loop after each batch's results are recorded; setting `stopped` makes
        # it claim nothing more and hand queued batches back (in-flight ones finish and are recorded).
        nonlocal reached_not_after
        if progress is not None:
            progress(entry, stats)
        if not stats.stopped:
            if stop.is_set():
                stats.stopped = "stopped by a signal (SIGTERM/SIGINT); the next run resumes"
            elif entry.not_after is not None and clock() >= entry.not_after:
                reached_not_after = True
                stats.stopped = f"not_after {entry.not_after.isoformat()} reached"

    def started(report: "RunReport") -> None:
        c = report.counts
        waiting = c[PENDING] + c[SENDING] + c[DEFERRED]
        text = f"{slug}: {waiting} to send"
        if report.already_sent:
            text += f", {report.already_sent} already sent"
        if report.prepared.get("in_doubt"):
            text += f", {report.prepared['in_doubt']} possibly delivered by the interrupted run (sent again)"
        log(text)

    try:
        job = SendJob(settings, str(entry.path), transport=transport)
        if stop.is_set():  # the signal came while it rendered: start nothing new
            return DueResult(slug, STOPPED, "stopped by a signal before it started; the next run sends it")
        report = job.run(options, progress=watch, on_start=started)
    except SendLockedError as exc:
        return DueResult(slug, BUSY, f"skipped: {exc.message}")
    except DigestError as exc:
        partial = getattr(exc, "report", None)
        hint = exc.hint or ""
        if "--resume-changed" in hint:
            # --due never accepts a changed message on its own: a person decides, by hand.
            hint = f"to send the changed issue to the rest, run by hand: digest send {slug} --yes --resume-changed"
        reason = exc.message + (f" ({hint})" if hint else "")
        return DueResult(slug, FAILED_TO_START, reason + note(slug, STATE_FAILED, reason), partial)
    try:
        if entry.note is not None:
            ledger_book().clear_note(slug)
    except DigestError:
        pass  # the note is only shown by `digest schedule`; the send itself is recorded
    c = report.counts
    left = c[PENDING] + c[SENDING] + c[DEFERRED]
    summary = f"{c[SENT]}/{sum(c.values()) - c[SKIPPED]} sent"
    if c[FAILED]:
        summary += f", {c[FAILED]} failed"
    if c[DEFERRED]:
        summary += f", {c[DEFERRED]} deferred"
    if reached_not_after and left:
        reason = f"stopped at not_after {entry.not_after.isoformat()}: {summary}, {left} left unsent"  # type: ignore[union-attr]
        return DueResult(slug, EXPIRED_NOW, reason + note(slug, EXPIRED, reason), report)
    if stop.is_set() and left:
        return DueResult(slug, STOPPED, f"stopped by a signal: {summary}; the next run resumes", report)
    if report.exit_code == 0:
        return DueResult(slug, SENT_OK, summary, report)
    if report.stats.stopped:
        summary += f" — {report.stats.stopped}"
    return DueResult(slug, INCOMPLETE, summary, report)


__all__ = [
    "DRAFT", "SCHEDULED", "DUE", "STATE_SENDING", "STATE_SENT", "STATE_FAILED", "EXPIRED",
    "Entry", "Note", "ScheduleLedger", "DueLock", "DueRun", "DueResult", "classify", "schedule_entries",
    "next_scheduled", "format_when", "humanize", "describe", "run_due", "real_clock",
]
