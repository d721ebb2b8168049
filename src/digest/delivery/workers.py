"""The sending threads: each sends queued batches over its own transport connection."""

from __future__ import annotations

import queue
import threading

from digest.delivery.throttle import Throttle
from digest.errors import TransportAuthError, TransportError
from digest.transports.base import Transport

NOT_SENT = object()  # a worker's answer for a batch it did not send because the run is halting


class Worker(threading.Thread):
    """Sends queued batches over its own transport connection."""

    def __init__(self, transport: Transport, jobs: queue.Queue, results: queue.Queue, throttle: Throttle,
                 halt: threading.Event):
        super().__init__(daemon=True, name=f"digest-send-{transport.name}")
        self.transport = transport
        self.jobs = jobs
        self.results = results
        self.throttle = throttle
        self.halt = halt
        self.busy = False  # holds a batch whose result is not yet in the results queue

    def run(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            self.busy = True
            if self.halt.is_set():
                self.results.put(("sent", job, NOT_SENT))
                self.busy = False
                continue
            try:
                self.throttle.wait(len(job))
                if self.halt.is_set():
                    self.results.put(("sent", job, NOT_SENT))
                    self.busy = False
                    continue
                outcome: object = self.transport.send_batch(job)
                if len(outcome) != len(job):  # a transport bug must not lose anyone
                    raise TransportError(f"{self.transport.describe()}: {len(outcome)} results for "
                                         f"{len(job)} messages")
            except BaseException as exc:  # noqa: BLE001 — handed to the owner thread, which decides
                if isinstance(exc, TransportAuthError):
                    self.halt.set()  # no other worker may try again with refused credentials
                outcome = exc
            self.results.put(("sent", job, outcome))
            self.busy = False


