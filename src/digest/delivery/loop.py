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
import threading
import time
from typing import Callable, Sequence

from digest.clock import Timer
from digest.delivery.options import RunOptions, RunStats
from digest.delivery.outcomes import Recorder
from digest.delivery.stop import StopRequest
from digest.delivery.throttle import Sleep, Throttle, TokenBucket
from digest.delivery.workers import Worker
from digest.outgoing import OutgoingMessage
from digest.store.ledger import Ledger
from digest.store.rows import DEFERRED, PENDING, RecipientRow
from digest.transports.base import Transport

# rows → one OutgoingMessage per row, or the exception that stopped that row's message being built
Builder = Callable[[Sequence[RecipientRow]], list]


class SendLoop:
    """One run over one send's pending rows (see the module docstring for the guarantees)."""

    def __init__(self, ledger: Ledger, send_id: int, transports: Sequence[Transport], build: Builder,
                 options: RunOptions, *, clock: Timer = time.monotonic, sleep: Sleep = time.sleep,
                 rand: Callable[[], float] = random.random,
                 progress: Callable[[RunStats], None] | None = None, only_ids: Sequence[int] | None = None,
                 stop: threading.Event | None = None):
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
        self._claimed_fresh = 0
        # `digest retry`: only these rows (put back to pending by prepare_run), not other pending ones.
        self._only_ids = list(only_ids) if only_ids is not None else None
        self._retry_ids = tuple(only_ids or ())
        self._pending_builds: set = set()
        # Set by the caller's signal handlers (Ctrl-C, SIGTERM): checked between steps, so every
        # claimed batch is either sent and recorded or handed back.
        self._stop = stop if stop is not None else StopRequest()

    # --- claiming -------------------------------------------------------------------------------

    def _claim_next(self) -> list[RecipientRow]:
        now = self.clock()
        retry_due = self._rec.retry_due
        due = [rid for rid, at in retry_due.items() if at <= now][: self.batch_size]
        if due:
            for rid in due:
                del retry_due[rid]
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
        # ("sent", messages, outcome, recorded) from workers, ("built", rows, future, None) from builders
        events: queue.Queue = queue.Queue()
        workers = [Worker(t, jobs, events, self._throttle, self._halt) for t in self.transports]
        for w in workers:
            w.start()
        try:
            self._pump(jobs, events, max_inflight=len(workers) + 1 + getattr(self.build, "processes", 0))
        except KeyboardInterrupt:  # a second Ctrl-C / SIGTERM: let what is on the wire finish
            self.stats.stopped = self._interrupted_reason()
            self._halt.set()
            self._drain(jobs, events, workers)
        finally:
            # After an error (e.g. the ledger cannot be written: a full disk) no batch goes out any
            # more: the halt comes first, then the workers waiting for a record are let go.
            self._halt.set()
            for w in workers:
                w.release()
                jobs.put(None)
            for w in workers:
                w.join(timeout=30)
        self._record_leftovers(events, jobs)
        if self._retry_ids:  # a stopped `digest retry`: what it did not send waits for the next retry
            self.ledger.defer_pending(self.send_id, self._retry_ids)
        self.stats.deferred = len(self._rec.deferred)
        self.stats.finished = self.clock()
        self.stats.error = self._rec.stop_error
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
        self._rec = Recorder(self.ledger, self.options, self.stats, self._throttle, clock=self.clock,
                             rand=self.rand)

    def _pump(self, jobs: queue.Queue, events: queue.Queue, *, max_inflight: int) -> None:
        """The main loop. `inflight` counts batches claimed but not yet recorded: one per connection
        being sent, plus enough being built or queued that no worker waits for the builder."""
        inflight = 0
        while True:
            if self._stop.is_set() and not self.stats.stopped:
                self.stats.stopped = self._interrupted_reason()
                self._halt.set()
            while not self.stats.stopped and inflight < max_inflight:
                rows = self._claim_next()
                if not rows:
                    break
                inflight += 1 - self._start_build(rows, jobs, events)
            if self.stats.stopped:
                inflight -= self._hand_back(jobs)
            if inflight == 0:
                if self.stats.stopped or not self._rec.retry_due:
                    return
                self._sleep_until_next_retry()
                continue
            event = self._next_event(events)
            while event is not None:  # None: a stop request; the top of the loop stops claiming and drains
                inflight -= self._handle(event, jobs)
                # Record every answer that is in before building more: each worker waits for its
                # last batch to be recorded before it sends the next.
                event = _ready(events)

    def _start_build(self, rows: Sequence[RecipientRow], jobs: queue.Queue, events: queue.Queue) -> int:
        """Build a claimed batch: in a builder process (its result comes back as an event) or here
        (queued for the workers at once). Returns 1 when the batch is already settled."""
        pool = getattr(self.build, "submit", None)  # a process pool builds ahead while workers send
        if pool is None:
            return self._dispatch(rows, self.build(rows), jobs)
        future = pool(rows)
        self._pending_builds.add(future)
        future.add_done_callback(lambda f, rows=rows: events.put(("built", rows, f, None)))
        return 0

    def _sleep_until_next_retry(self) -> None:
        wait = min(self._rec.retry_due.values()) - self.clock()
        if wait > 0:
            self.sleep(wait)

    def _handle(self, event: tuple, jobs: queue.Queue) -> int:
        """One event from a builder or a worker; returns how many batches it settled (0 or 1)."""
        kind, items, outcome, recorded = event
        if kind == "built":
            self._pending_builds.discard(outcome)
            return self._built(items, outcome, jobs)
        self._record(items, outcome, recorded)
        self.stats.deferred = len(self._rec.deferred)
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
                kind, items, outcome, recorded = events.get(timeout=0.2)
            except queue.Empty:
                self._hand_back(jobs)
                continue
            if kind == "built":
                self._pending_builds.discard(outcome)
                self._built(items, outcome, jobs)
            else:
                self._record(items, outcome, recorded)
            self._hand_back(jobs)

    def _record_leftovers(self, events: queue.Queue, jobs: queue.Queue) -> None:
        """Answers that arrived after an interrupted drain."""
        while not events.empty():
            kind, items, outcome, recorded = events.get_nowait()
            if kind == "sent":
                self._record(items, outcome, recorded)
            else:  # built after the stop: never handed to a connection
                self._built(items, outcome, jobs)

    def _dispatch(self, rows: Sequence[RecipientRow], built: list, jobs: queue.Queue) -> int:
        """Queue the built messages for the workers; returns 1 when nothing was left to queue."""
        messages = self._rec.built(rows, built)
        if messages and not self.stats.stopped:
            jobs.put(messages)
            return 0
        self._rec.give_back([m.recipient_id for m in messages])
        return 1

    def _built(self, rows: Sequence[RecipientRow], future, jobs: queue.Queue) -> int:
        try:
            built = future.result()
        except BaseException as exc:  # noqa: BLE001 — the builder process died: nobody in the batch was sent
            # Not the recipients' fault: hand the batch back and stop (the next run rebuilds it).
            self._rec.give_back([r.id for r in rows], error=f"not built: {exc or type(exc).__name__}")
            if not self.stats.stopped:
                self.stats.stopped = f"the message builder process failed ({exc or type(exc).__name__})"
                self._halt.set()
            return 1
        return self._dispatch(rows, built, jobs)

    def _next_event(self, events: queue.Queue):
        """The next worker/builder event, or None when a stop was requested meanwhile."""
        while True:
            if self._stop.is_set() and not self.stats.stopped:
                return None
            try:
                return events.get(timeout=0.2)
            except queue.Empty:
                continue

    def _interrupted_reason(self) -> str:
        if not self._stop.is_set():  # a KeyboardInterrupt where nobody installed a handler
            return "interrupted (Ctrl-C)"
        return f"interrupted ({getattr(self._stop, 'reason', 'stop requested')})"

    def _record(self, messages: Sequence[OutgoingMessage], outcome, recorded: threading.Event) -> None:
        """Record one batch's answer, then let its worker send again (after a halt when the run stops)."""
        self._rec.record(messages, outcome)
        if self.stats.stopped:
            self._halt.set()
        recorded.set()

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
            self._rec.give_back([m.recipient_id for m in job])
            handed += 1



def _ready(events: queue.Queue):
    """The next event if one is waiting, else None."""
    try:
        return events.get_nowait()
    except queue.Empty:
        return None
