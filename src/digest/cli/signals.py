"""SIGTERM and Ctrl-C during a run: the first asks the run to stop between batches, a second interrupts."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An Event set by the first SIGTERM or SIGINT (systemd stop, shutdown, Ctrl-C); the second one
    raises KeyboardInterrupt, as Ctrl-C does elsewhere. The previous handlers come back afterwards."""
    stop = threading.Event()

    def on_signal(signum, frame) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
