"""The batch loop: claim a batch in the ledger, build each message, hand it to a transport, record.

One thread (the caller's) owns the ledger: it claims a batch (committed before anything is sent),
builds the messages and queues them; N worker threads, each with its own transport connection,
send batches and hand the results back; the owner records them. So a crash can leave at most the
queued and in-flight batches in `sending` — at most (connections + 1) × batch size rows, of which
only the ones a worker had handed to its transport (one batch per connection) may really have gone
out. The next run sends those again ("possibly delivered").
"""

from __future__ import annotations

import queue
import random
import signal
import threading
import time
from typing import Callable, Sequence

from digest.clock import Timer
from digest.delivery.options import RunOptions, RunStats
from digest.delivery.stop import FailureStreak
from digest.delivery.throttle import Sleep, Throttle, TokenBucket, backoff_delay
from digest.delivery.workers import NOT_SENT, Worker
from digest.errors import (
    PermanentTransportError,
    TransientTransportError,
    TransportAuthError,
)
from digest.outgoing import OutgoingMessage
from digest.store.ledger import Ledger
from digest.store.rows import DEFERRED, FAILED, PENDING, SENT, Outcome, RecipientRow
from digest.transports.base import SendResult, Status, Transport

# rows → one OutgoingMessage per row, or the exception that stopped that row's message being built
Builder = Callable[[Sequence[RecipientRow]], list]


class SendLoop:
    """One run over one send's pending rows (see the module docstring for the guarantees)."""

    def __init__(self, ledger: Ledger, send_id: int, transports: Sequence[Transport], build: Builder,
                 options: RunOptions, *, clock: Timer = time.monotonic, sleep: Sleep = time.sleep,
                 rand: Callable[[], float] = random.random,
                 progress: Callable[[RunStats], None] | None = None, only_ids: Sequence[int] | None = None):
        self.ledger = ledger
        self.send_id = send_id
        self.transports = list(transports)
        self.build = build
        self.options = options
        self.clock = clock
        self.sleep = sleep
        self.rand = rand
        self.progress = progress or (lambda stats: None)
        max_batch = min(t.max_batch for t in self.transports)
        self.batch_size = max(1, min(options.batch_size, max_batch))
        if options.rate > 0:  # keep bursts to about a second's worth at low rates
            self.batch_size = max(1, min(self.batch_size, int(options.rate)))
        self.stats = RunStats()
        self._retry_due: dict[int, float] = {}
        self._tries: dict[int, int] = {}
        self._deferred: set[int] = set()
        self._claimed_fresh = 0
        # `digest retry`: only these rows (put back to pending by prepare_run), not other pending ones.
        self._only_ids = list(only_ids) if only_ids is not None else None
        self._pending_builds: set = set()
        self._interrupted = False
        self._streak = FailureStreak(options.max_consecutive_failures)
        self._stop_error: BaseException | None = None

    # --- claiming -------------------------------------------------------------------------------

    def _claim_next(self) -> list[RecipientRow]:
        now = self.clock()
        due = [rid for rid, at in self._retry_due.items() if at <= now][: self.batch_size]
        if due:
            for rid in due:
                del self._retry_due[rid]
            rows = self.ledger.claim(self.send_id, len(due), ids=due, from_state=DEFERRED)
            self.stats.retried += len(rows)
            return rows
        limit = self.batch_size
        if self.options.limit is not None:
            limit = min(limit, self.options.limit - self._claimed_fresh)
            if limit <= 0:
                return []
        if self._only_ids is not None:
            rows = []
            while not rows and self._only_ids:
                chunk, self._only_ids = self._only_ids[:limit], self._only_ids[limit:]
                rows = self.ledger.claim(self.send_id, len(chunk), ids=chunk, from_state=PENDING)
        else:
            rows = self.ledger.claim(self.send_id, limit)
        self._claimed_fresh += len(rows)
        return rows

    # --- recording ------------------------------------------------------------------------------

    def _schedule_retry(self, rid: int, retry_after: float | None) -> bool:
        tries = self._tries.get(rid, 0) + 1
        self._tries[rid] = tries
        if tries > self.options.retries:
            self._retry_due.pop(rid, None)
            return False  # left deferred for the next run
        self._retry_due[rid] = self.clock() + backoff_delay(
            tries, self.options.retry_base_delay, self.options.retry_max_delay, retry_after, self.rand)
        return True

    def _note_error(self, email: str, text: str) -> None:
        line = f"{email}: {text}"
        if line in self.stats.last_errors:
            self.stats.last_errors.remove(line)
        elif len(self.stats.last_errors) >= 5:
            self.stats.last_errors.pop(0)
        self.stats.last_errors.append(line)

    def _failure(self, n: int = 1) -> None:
        reason = self._streak.failure(n)
        if reason and not self.stats.stopped:
            self.stats.stopped = reason

    def _record_results(self, messages: Sequence[OutgoingMessage], results: Sequence[SendResult]) -> None:
        outcomes: list[Outcome] = []
        suppress: list[tuple[str, str]] = []
        for msg, res in zip(messages, results):
            rid = msg.recipient_id
            self.stats.attempts += 1
            reason = res.reason or (res.code or "")
            if res.status == Status.SENT:
                outcomes.append(Outcome(rid, SENT, provider_id=res.provider_id, code=res.code))
                self.stats.sent += 1
                self._deferred.discard(rid)
                self._streak.success()
            elif res.status == Status.FAILED:
                outcomes.append(Outcome(rid, FAILED, code=res.code, error=reason, permanent=not res.retryable))
                self.stats.failed += 1
                self._deferred.discard(rid)
                if res.suppress:
                    suppress.append((msg.to_email, reason if reason.startswith(res.code or "\0")
                                     else f"{res.code or ''} {reason}".strip()))
                    self.stats.suppressed_now += 1
                self._note_error(msg.to_email, reason)
                self._failure()
            else:
                outcomes.append(Outcome(rid, DEFERRED, code=res.code, error=reason))
                self._deferred.add(rid)
                self._schedule_retry(rid, res.retry_after)
                self._note_error(msg.to_email, reason)
                self._failure()
        self.ledger.record(outcomes, suppress)

    def _record_exception(self, messages: Sequence[OutgoingMessage], exc: BaseException) -> None:
        ids = [m.recipient_id for m in messages]
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, TransportAuthError) or not isinstance(exc, Exception):
            # Nothing was accepted: hand the batch back untouched and stop the run.
            self.ledger.record([Outcome(rid, PENDING, error=text) for rid in ids])
            self._stop_error = exc
            self.stats.stopped = self.stats.stopped or f"stopped: {text}"
            return
        self.stats.attempts += len(ids)
        if isinstance(exc, PermanentTransportError):
            # The provider refused the whole batch: failed, but `digest retry` may try again after a fix.
            self.ledger.record([Outcome(rid, FAILED, error=text, permanent=False) for rid in ids])
            self.stats.failed += len(ids)
            for rid in ids:
                self._deferred.discard(rid)
        else:
            retry_after = getattr(exc, "retry_after", None)
            self.ledger.record([Outcome(rid, DEFERRED, error=text) for rid in ids])
            self._deferred.update(ids)
            for rid in ids:
                self._schedule_retry(rid, retry_after)
            if isinstance(exc, TransientTransportError):
                self._throttle.pause(backoff_delay(min(self._streak.count // max(1, len(ids)) + 1, 8),
                                                   self.options.retry_base_delay, self.options.retry_max_delay,
                                                   retry_after, self.rand))
        if messages:
            self._note_error(messages[0].to_email + (f" (+{len(ids) - 1} more)" if len(ids) > 1 else ""), text)
        self._failure(len(ids))

    def _record_build(self, rows: Sequence[RecipientRow], built: list) -> list[OutgoingMessage]:
        """Keep the built messages; record the rows whose message could not be built as failed."""
        good: list[OutgoingMessage] = []
        bad: list[Outcome] = []
        for row, item in zip(rows, built):
            if isinstance(item, BaseException):
                text = f"message not built: {item}".splitlines()[0]
                bad.append(Outcome(row.id, FAILED, error=text, permanent=False))
                self.stats.failed += 1
                self._note_error(row.email, text)
                self._failure()
            else:
                good.append(item)
        if bad:
            self.ledger.record(bad)
        return good

    # --- the run --------------------------------------------------------------------------------

    def run(self) -> RunStats:
        """Send until nothing is left (or a stop); the ledger holds every outcome.

        The states: claiming (while there is room in flight and no stop), waiting for an event
        (a built batch, a sent batch), waiting for a retry to fall due, draining after a stop or a
        first Ctrl-C (in-flight batches finish and are recorded, queued ones are handed back), done.
        The stop policy: a run stops on a refused login, a builder failure, Ctrl-C, a caller's
        `stats.stopped` (the --due runner's not_after and signals), or `max_consecutive_failures`.
        """
        self._start()
        jobs: queue.Queue = queue.Queue()
        events: queue.Queue = queue.Queue()  # ("sent", messages, outcome) from workers, ("built", rows, future)
        workers = [Worker(t, jobs, events, self._throttle, self._halt) for t in self.transports]
        for w in workers:
            w.start()
        previous_handler = self._catch_ctrl_c()
        try:
            self._pump(jobs, events, max_inflight=len(workers) + 1 + getattr(self.build, "processes", 0))
        except KeyboardInterrupt:
            self.stats.stopped = "interrupted (Ctrl-C)"
            self._halt.set()
            self._drain(jobs, events, workers)
        finally:
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
            self._halt.set()  # after an error (e.g. the ledger cannot be written) no queued batch goes out
            for _ in workers:
                jobs.put(None)
            for w in workers:
                w.join(timeout=30)
        self._record_leftovers(events, jobs)
        self.stats.deferred = len(self._deferred)
        self.stats.finished = self.clock()
        self.stats.error = self._stop_error
        self.progress(self.stats)
        return self.stats

    def _start(self) -> None:
        """Count what this run may send, start the clock, the rate limit and the halt flag."""
        counts = self.ledger.counts(self.send_id)
        waiting = counts[PENDING] if self._only_ids is None else len(self._only_ids)
        self.stats.total = waiting if self.options.limit is None else min(waiting, self.options.limit)
        self.stats.started = self.clock()
        bucket = TokenBucket(self.options.rate, burst=max(1.0, float(self.batch_size)), clock=self.clock,
                             sleep=self.sleep)
        self._throttle = Throttle(bucket, self.clock, self.sleep)
        self._halt = threading.Event()

    def _pump(self, jobs: queue.Queue, events: queue.Queue, *, max_inflight: int) -> None:
        """The main loop. `inflight` counts batches claimed but not yet recorded: one per connection
        being sent, plus enough being built or queued that no worker waits for the builder."""
        inflight = 0
        while True:
            if self._interrupted and not self.stats.stopped:
                self.stats.stopped = "interrupted (Ctrl-C)"
                self._halt.set()
            while not self.stats.stopped and inflight < max_inflight:
                rows = self._claim_next()
                if not rows:
                    break
                inflight += 1 - self._start_build(rows, jobs, events)
            if self.stats.stopped:
                inflight -= self._hand_back(jobs)
            if inflight == 0:
                if self.stats.stopped or not self._retry_due:
                    return
                self._sleep_until_next_retry()
                continue
            event = self._next_event(events)
            if event is not None:  # None: Ctrl-C; the top of the loop stops claiming and drains
                inflight -= self._handle(event, jobs)

    def _start_build(self, rows: Sequence[RecipientRow], jobs: queue.Queue, events: queue.Queue) -> int:
        """Build a claimed batch: in a builder process (its result comes back as an event) or here
        (queued for the workers at once). Returns 1 when the batch is already settled."""
        pool = getattr(self.build, "submit", None)  # a process pool builds ahead while workers send
        if pool is None:
            return self._dispatch(rows, self.build(rows), jobs)
        future = pool(rows)
        self._pending_builds.add(future)
        future.add_done_callback(lambda f, rows=rows: events.put(("built", rows, f)))
        return 0

    def _sleep_until_next_retry(self) -> None:
        wait = min(self._retry_due.values()) - self.clock()
        if wait > 0:
            self.sleep(wait)

    def _handle(self, event: tuple, jobs: queue.Queue) -> int:
        """One event from a builder or a worker; returns how many batches it settled (0 or 1)."""
        kind, items, outcome = event
        if kind == "built":
            self._pending_builds.discard(outcome)
            return self._built(items, outcome, jobs)
        self._record(items, outcome)
        self.stats.deferred = len(self._deferred)
        self.stats.finished = self.clock()
        self.progress(self.stats)
        return 1

    def _drain(self, jobs: queue.Queue, events: queue.Queue, workers: Sequence[Worker]) -> None:
        """After a second Ctrl-C: let the batches on the wire finish so their results are recorded,
        not left in doubt. (The interrupt may have come between two bookkeeping steps, so this does
        not trust the in-flight count: it waits while anything can still produce an event.)"""
        self._hand_back(jobs)
        while (self._pending_builds or any(w.busy for w in workers) or not jobs.empty()
               or not events.empty()):
            try:
                kind, items, outcome = events.get(timeout=0.2)
            except queue.Empty:
                self._hand_back(jobs)
                continue
            if kind == "built":
                self._pending_builds.discard(outcome)
                self._built(items, outcome, jobs)
            else:
                self._record(items, outcome)
            self._hand_back(jobs)

    def _record_leftovers(self, events: queue.Queue, jobs: queue.Queue) -> None:
        """Answers that arrived after an interrupted drain."""
        while not events.empty():
            kind, items, outcome = events.get_nowait()
            if kind == "sent":
                self._record(items, outcome)
            else:  # built after the stop: never handed to a connection
                self._built(items, outcome, jobs)

    def _dispatch(self, rows: Sequence[RecipientRow], built: list, jobs: queue.Queue) -> int:
        """Queue the built messages for the workers; returns 1 when nothing was left to queue."""
        messages = self._record_build(rows, built)
        if messages and not self.stats.stopped:
            jobs.put(messages)
            return 0
        if messages:
            self.ledger.record([Outcome(m.recipient_id, PENDING, error="not sent: the run stopped") for m in messages])
        return 1

    def _built(self, rows: Sequence[RecipientRow], future, jobs: queue.Queue) -> int:
        try:
            built = future.result()
        except BaseException as exc:  # noqa: BLE001 — the builder process died: nobody in the batch was sent
            # Not the recipients' fault: hand the batch back and stop (the next run rebuilds it).
            self.ledger.record([Outcome(r.id, PENDING, error=f"not built: {exc or type(exc).__name__}")
                                for r in rows])
            if not self.stats.stopped:
                self.stats.stopped = f"the message builder process failed ({exc or type(exc).__name__})"
                self._halt.set()
            return 1
        return self._dispatch(rows, built, jobs)

    def _next_event(self, events: queue.Queue):
        """The next worker/builder event, or None when Ctrl-C was pressed meanwhile."""
        while True:
            if self._interrupted and not self.stats.stopped:
                return None
            try:
                return events.get(timeout=0.2)
            except queue.Empty:
                continue

    def _catch_ctrl_c(self):
        """Make the first Ctrl-C a request to stop (checked between steps, so every claimed batch is
        either sent and recorded or handed back); a second one interrupts at once. Main thread only."""
        if threading.current_thread() is not threading.main_thread():
            return None

        def on_sigint(signum, frame):
            if self._interrupted:
                raise KeyboardInterrupt
            self._interrupted = True
        return signal.signal(signal.SIGINT, on_sigint)

    def _record(self, messages: Sequence[OutgoingMessage], outcome) -> None:
        if outcome is NOT_SENT:
            self.ledger.record([Outcome(m.recipient_id, PENDING, error="not sent: the run stopped")
                                for m in messages])
        elif isinstance(outcome, BaseException):
            self._record_exception(messages, outcome)
        else:
            self._record_results(messages, outcome)
        if self.stats.stopped:
            self._halt.set()

    def _hand_back(self, jobs: queue.Queue) -> int:
        """Return queued (not yet sent) batches to `pending`; returns how many batches."""
        handed = 0
        while True:
            try:
                job = jobs.get_nowait()
            except queue.Empty:
                return handed
            if job is None:
                jobs.put(None)
                return handed
            self.ledger.record([Outcome(m.recipient_id, PENDING, error="not sent: the run stopped") for m in job])
            handed += 1

