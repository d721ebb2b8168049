"""SIGTERM and Ctrl-C during a run: the first asks the run to stop between batches, a second interrupts."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

from digest.delivery.stop import StopRequest

NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """A StopRequest set by the first SIGTERM or SIGINT (systemd stop, `timeout`, `docker stop`,
    Ctrl-C); the second one raises KeyboardInterrupt, as Ctrl-C does elsewhere. The previous handlers
    come back afterwards. Only the main thread can install handlers: elsewhere nothing is caught."""
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def on_signal(signum, frame) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.request(NAMES.get(signum, f"signal {signum}"))

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
