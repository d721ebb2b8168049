"""Recording a run's outcomes: transport answers → ledger rows, the run's counts, in-run retries and
the stop policy's streak. Used by the send loop's owner thread only (it owns the ledger connection).
"""

from __future__ import annotations

import random
import time
from typing import Callable, Sequence

from digest.clock import Timer
from digest.delivery.options import RunOptions, RunStats
from digest.delivery.stop import FailureStreak
from digest.delivery.throttle import Throttle, backoff_delay
from digest.delivery.workers import NOT_SENT
from digest.errors import (
    PermanentTransportError,
    TransientTransportError,
    TransportAuthError,
)
from digest.outgoing import OutgoingMessage
from digest.store.ledger import Ledger
from digest.store.rows import DEFERRED, FAILED, PENDING, SENT, Outcome, RecipientRow
from digest.transports.base import SendResult, Status

NOT_SENT_NOTE = "not sent: the run stopped"


class Recorder:
    """Writes each batch's outcome to the ledger and keeps the run's bookkeeping.

    `retry_due` (row id → when its in-run retry falls due) is read by the loop's claiming.
    """

    def __init__(self, ledger: Ledger, options: RunOptions, stats: RunStats, throttle: Throttle, *,
                 clock: Timer = time.monotonic, rand: Callable[[], float] = random.random):
        self.ledger = ledger
        self.options = options
        self.stats = stats
        self.throttle = throttle
        self.clock = clock
        self.rand = rand
        self.retry_due: dict[int, float] = {}
        self.deferred: set[int] = set()
        self.stop_error: BaseException | None = None
        self._tries: dict[int, int] = {}
        self._streak = FailureStreak(options.max_consecutive_failures)

    def record(self, messages: Sequence[OutgoingMessage], outcome) -> None:
        """A worker's answer for one batch: results, an exception, or NOT_SENT (handed back)."""
        if outcome is NOT_SENT:
            self.give_back([m.recipient_id for m in messages])
        elif isinstance(outcome, BaseException):
            self._exception(messages, outcome)
        else:
            self._results(messages, outcome)

    def give_back(self, ids: Sequence[int], error: str = NOT_SENT_NOTE) -> None:
        """Rows claimed but never handed to a transport: back to where the next run takes them."""
        if ids:
            self.ledger.record([Outcome(rid, PENDING, error=error) for rid in ids])

    def built(self, rows: Sequence[RecipientRow], built: list) -> list[OutgoingMessage]:
        """Keep the built messages; record the rows whose message could not be built as failed."""
        good: list[OutgoingMessage] = []
        bad: list[Outcome] = []
        for row, item in zip(rows, built):
            if isinstance(item, BaseException):
                text = f"message not built: {item}".splitlines()[0]
                bad.append(Outcome(row.id, FAILED, error=text, permanent=False))
                self.stats.failed += 1
                self._note_error(row.email, text)
                self._count(self._streak.failure())
            else:
                good.append(item)
        if bad:
            self.ledger.record(bad)
        return good

    # --- one batch's answers ----------------------------------------------------------------------

    def _results(self, messages: Sequence[OutgoingMessage], results: Sequence[SendResult]) -> None:
        outcomes: list[Outcome] = []
        suppress: list[tuple[str, str]] = []
        for msg, res in zip(messages, results):
            rid = msg.recipient_id
            self.stats.attempts += 1
            reason = res.reason or (res.code or "")
            if res.status == Status.SENT:
                outcomes.append(Outcome(rid, SENT, provider_id=res.provider_id, code=res.code))
                self.stats.sent += 1
                self.deferred.discard(rid)
                self._streak.success()
            elif res.status == Status.FAILED:
                outcomes.append(Outcome(rid, FAILED, code=res.code, error=reason, permanent=not res.retryable))
                self.stats.failed += 1
                self.deferred.discard(rid)
                if res.suppress:
                    suppress.append((msg.to_email, reason if reason.startswith(res.code or "\0")
                                     else f"{res.code or ''} {reason}".strip()))
                    self.stats.suppressed_now += 1
                self._note_error(msg.to_email, reason)
                self._count(self._streak.failure())
            else:
                outcomes.append(Outcome(rid, DEFERRED, code=res.code, error=reason))
                self.deferred.add(rid)
                self._note_error(msg.to_email, reason)
                self._count(self._streak.deferral(retried=self._schedule_retry(rid, res.retry_after)))
        self.ledger.record(outcomes, suppress)

    def _exception(self, messages: Sequence[OutgoingMessage], exc: BaseException) -> None:
        ids = [m.recipient_id for m in messages]
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, TransportAuthError) or not isinstance(exc, Exception):
            # Nothing was accepted: hand the batch back untouched and stop the run.
            self.give_back(ids, error=text)
            self.stop_error = exc
            self.stats.stopped = self.stats.stopped or f"stopped: {text}"
            return
        self.stats.attempts += len(ids)
        if messages:
            self._note_error(messages[0].to_email + (f" (+{len(ids) - 1} more)" if len(ids) > 1 else ""), text)
        if isinstance(exc, PermanentTransportError):
            # The provider refused the whole batch: failed, but `digest retry` may try again after a fix.
            self.ledger.record([Outcome(rid, FAILED, error=text, permanent=False) for rid in ids])
            self.stats.failed += len(ids)
            self.deferred.difference_update(ids)
            self._count(self._streak.failure(len(ids)))
            return
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(exc, TransientTransportError):  # the pause grows with the batches failed in a row
            self.throttle.pause(backoff_delay(min(self._streak.in_a_row // max(1, len(ids)) + 1, 8),
                                              self.options.retry_base_delay, self.options.retry_max_delay,
                                              retry_after, self.rand))
        self.ledger.record([Outcome(rid, DEFERRED, error=text) for rid in ids])
        self.deferred.update(ids)
        for rid in ids:
            self._count(self._streak.deferral(retried=self._schedule_retry(rid, retry_after)))

    # --- bookkeeping --------------------------------------------------------------------------------

    def _schedule_retry(self, rid: int, retry_after: float | None) -> bool:
        """Schedule the row's next in-run try; False when its retries are used up (left deferred)."""
        tries = self._tries.get(rid, 0) + 1
        self._tries[rid] = tries
        if tries > self.options.retries:
            self.retry_due.pop(rid, None)
            return False  # left deferred for the next run
        self.retry_due[rid] = self.clock() + backoff_delay(
            tries, self.options.retry_base_delay, self.options.retry_max_delay, retry_after, self.rand)
        return True

    def _note_error(self, email: str, text: str) -> None:
        line = f"{email}: {text}"
        if line in self.stats.last_errors:
            self.stats.last_errors.remove(line)
        elif len(self.stats.last_errors) >= 5:
            self.stats.last_errors.pop(0)
        self.stats.last_errors.append(line)

    def _count(self, reason: str | None) -> None:
        if reason and not self.stats.stopped:
            self.stats.stopped = reason
