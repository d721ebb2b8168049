"""`digest send --due`: send every issue whose time has come; cron or a systemd timer runs it.

digest has no daemon: cron or a systemd timer runs `digest send --due` every few minutes. One run
- takes an exclusive OS lock (fcntl.flock on <state>/send-due.lock; the kernel drops it if the
  process dies), so overlapping runs never race — the second one reports "another run is in
  progress" and leaves;
- sends (or resumes) every issue whose `send_at` has passed and whose send is not complete, never one
  whose `not_after` has passed; `not_after` is checked again between batches, and a send that reaches
  it stops there, leaving the rest of the list unsent (state: expired);
- records an issue that cannot start (it does not render, the list is unreadable, a merge field is
  missing, the transport refuses the login) as failed, with the reason, in the ledger's
  schedule_notes table; the next run tries again, so fixing the issue is enough.

Which issues are due comes from the one status model (digest.status). The per-issue send lock and
the ledger's committed claims stay the second line of defence: even without this lock, two
processes could not send one recipient the same issue twice.

Every function takes the time as an aware `now` (or a Clock): the CLI passes the real clock, tests
pass their own.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Callable

from digest.checks.run import gate
from digest.clock import Clock, require_aware
from digest.errors import DigestError, SendLockedError
from digest.status import (
    EXPIRED,
    STATE_FAILED,
    IssueStatus,
    issue_statuses,
    next_scheduled,
)
from digest.store.ledger import Ledger, ledger_path
from digest.store.locks import DueLock
from digest.store.rows import DEFERRED, FAILED, PENDING, SENDING, SENT, SKIPPED

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings
    from digest.delivery.options import RunOptions, RunReport, RunStats

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
    next: IssueStatus | None = None
    broken_drafts: list[IssueStatus] = field(default_factory=list)

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


def run_due(settings: "Settings", now: datetime, options: "RunOptions", *,
            clock: Clock | None = None, log: Callable[[str], None] = lambda text: None,
            progress: Callable[[IssueStatus, "RunStats"], None] | None = None,
            on_result: Callable[[DueResult], None] | None = None,
            stop: threading.Event | None = None, transport: str | None = None) -> DueRun:
    """Send every issue that is due at `now` (see the module docstring); never prompts, never prints.

    `clock` gives the time for the checks made later in the run (not_after between batches); by
    default `now` plus the real time elapsed since the call. `log` receives one-line progress notes,
    `on_result` each issue's result as soon as it is known; `stop` (set by a SIGTERM handler) ends the run between batches, leaving the rest pending.
    """
    require_aware(now)
    if clock is None:
        started = time.monotonic()
        clock = lambda: now + timedelta(seconds=time.monotonic() - started)  # noqa: E731
    stop = stop or threading.Event()
    lock = DueLock(settings)
    if not lock.acquire():
        return DueRun(busy=lock.holder)
    try:
        path = ledger_path(settings)
        book = Ledger(path) if path.exists() else None
        try:
            return _run_due(settings, now, options, clock, log, progress, on_result, stop, transport, book)
        finally:
            if book is not None:
                book.close()
    finally:
        lock.release()


def _run_due(settings, now, options, clock, log, progress, on_result, stop, transport,
             book: Ledger | None) -> DueRun:
    entries = issue_statuses(settings, now, ledger=book)
    run = DueRun(next=next_scheduled(entries))

    def add(result: DueResult) -> None:
        run.results.append(result)
        if on_result is not None:
            on_result(result)

    def ledger_book() -> Ledger:
        nonlocal book
        if book is None:
            book = Ledger(ledger_path(settings))
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
        run.next = next_scheduled(issue_statuses(settings, clock(), ledger=book)) or run.next
    return run


def _send_one(settings, entry: IssueStatus, options, clock: Clock, log, progress, stop: threading.Event,
              transport, note, ledger_book) -> DueResult:
    """Send (or resume) one due issue and say how it went."""
    from digest.delivery.job import SendJob

    slug = entry.slug
    if entry.not_after is not None and clock() >= entry.not_after:  # time passed while earlier issues went out
        reason = f"not_after {entry.not_after.isoformat()} passed before it could start"
        return DueResult(slug, EXPIRED_NOW, reason + note(slug, EXPIRED, reason))
    log(f"{slug}: {'resuming' if entry.send is not None else 'sending'} "
        f"(send_at {entry.send_at.isoformat() if entry.send_at else '-'}"
        + (f", not_after {entry.not_after.isoformat()}" if entry.not_after else "") + ")")
    watch = _Watch(entry, clock, stop, progress, log)
    try:
        job = SendJob(settings, str(entry.path), transport=transport)
        # The pre-send checks: an issue they stop is failed (with the findings) and tried again next run.
        gate(job, accept_warnings=options.accept_all_warnings)
        if stop.is_set():  # the signal came while it rendered: start nothing new
            return DueResult(slug, STOPPED, "stopped by a signal before it started; the next run sends it")
        report = job.run(options, progress=watch, on_start=watch.started, stop=stop)
    except SendLockedError as exc:
        return DueResult(slug, BUSY, f"skipped: {exc.message}")
    except DigestError as exc:
        return _could_not_send(slug, exc, note)
    if isinstance(report.error, DigestError):
        return _could_not_send(slug, report.error, note, report)
    if report.error is not None:
        raise report.error
    try:
        if entry.note is not None:
            ledger_book().clear_note(slug)
    except DigestError:
        pass  # the note is only shown by `digest schedule`; the send itself is recorded
    return _outcome(entry, report, watch.reached_not_after, stop, note)


class _Watch:
    """The send loop's progress callback for one issue: passes progress on, stops at a signal or not_after.

    Called after each batch's results are recorded; setting `stopped` makes the loop claim nothing
    more and hand queued batches back (in-flight ones finish and are recorded).
    """

    def __init__(self, entry: IssueStatus, clock: Clock, stop: threading.Event, progress, log):
        self.entry, self.clock, self.stop, self.progress, self.log = entry, clock, stop, progress, log
        self.reached_not_after = False

    def __call__(self, stats: "RunStats") -> None:
        if self.progress is not None:
            self.progress(self.entry, stats)
        if stats.stopped:
            return
        not_after = self.entry.not_after
        if self.stop.is_set():
            stats.stopped = "stopped by a signal (SIGTERM/SIGINT); the next run resumes"
        elif not_after is not None and self.clock() >= not_after:
            self.reached_not_after = True
            stats.stopped = f"not_after {not_after.isoformat()} reached"

    def started(self, report: "RunReport") -> None:
        """The issue's start line: how many to send, how many already went out."""
        c = report.counts
        text = f"{self.entry.slug}: {c[PENDING] + c[SENDING] + c[DEFERRED]} to send"
        if report.already_sent:
            text += f", {report.already_sent} already sent"
        if report.prepared.get("in_doubt"):
            text += f", {report.prepared['in_doubt']} possibly delivered by the interrupted run (sent again)"
        self.log(text)


def _could_not_send(slug: str, exc: DigestError, note, report: "RunReport | None" = None) -> DueResult:
    """An issue that could not start (or stopped on an error): failed, with the reason noted for the next run."""
    hint = exc.hint or ""
    if "--resume-changed" in hint:
        # --due never accepts a changed message on its own: a person decides, by hand.
        hint = f"to send the changed issue to the rest, run by hand: digest send {slug} --yes --resume-changed"
    reason = exc.message + (f" ({hint})" if hint else "")
    return DueResult(slug, FAILED_TO_START, reason + note(slug, STATE_FAILED, reason), report)


def _outcome(entry: IssueStatus, report: "RunReport", reached_not_after: bool, stop: threading.Event,
             note) -> DueResult:
    """How a run that went through ended: sent, expired at not_after, stopped by a signal, or incomplete."""
    slug, c = entry.slug, report.counts
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
