"""The sending threads: each sends queued batches over its own transport connection."""

from __future__ import annotations

import queue
import threading

from digest.delivery.throttle import Throttle
from digest.errors import TransportAuthError, TransportError
from digest.transports.base import Transport

NOT_SENT = object()  # a worker's answer for a batch it did not send because the run is halting


class Worker(threading.Thread):
    """Sends queued batches over its own transport connection.

    A worker hands a batch to its transport only while the run is not halted, and sends its next
    batch only once the owner has recorded the answers to its last one (or the run halts). So at
    any moment each connection has at most one batch that may have gone out unrecorded — the bound
    on what a crash or a full disk can leave in doubt — and once a ledger write fails (the owner
    halts before it lets any worker go) no further batch goes out.
    """

    def __init__(self, transport: Transport, jobs: queue.Queue, results: queue.Queue, throttle: Throttle,
                 halt: threading.Event):
        super().__init__(daemon=True, name=f"digest-send-{transport.name}")
        self.transport = transport
        self.jobs = jobs
        self.results = results
        self.throttle = throttle
        self.halt = halt
        self.busy = False  # holds a batch whose result is not yet in the results queue
        self.recorded = threading.Event()  # set by the owner once this worker's last answer is recorded

    def run(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            self.busy = True
            outcome = self._send(job)
            self.recorded.clear()
            self.results.put(("sent", job, outcome, self.recorded))
            self.busy = False
            # The owner sets halt before it releases anyone, so a halted run never waits here.
            if outcome is not NOT_SENT and not self.halt.is_set():
                self.recorded.wait()

    def release(self) -> None:
        """Stop waiting for a record (the run is over or halted)."""
        self.recorded.set()

    def _send(self, job: list) -> object:
        """The transport's results for the batch, the exception it raised, or NOT_SENT after a halt."""
        if self.halt.is_set():
            return NOT_SENT
        try:
            self.throttle.wait(len(job))
            if self.halt.is_set():
                return NOT_SENT
            outcome = self.transport.send_batch(job)
            if len(outcome) != len(job):  # a transport bug must not lose anyone
                raise TransportError(f"{self.transport.describe()}: {len(outcome)} results for "
                                     f"{len(job)} messages")
            return outcome
        except BaseException as exc:  # noqa: BLE001 — handed to the owner thread, which decides
            if isinstance(exc, TransportAuthError):
                self.halt.set()  # no other worker may try again with refused credentials
            return exc
