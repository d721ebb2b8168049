"""Clocks for tests: a fake monotonic clock that moves only when slept on, and aware datetimes from text."""

from __future__ import annotations

import threading
from datetime import datetime


class FakeClock:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self):
        self.now = 1000.0
        self.slept: list[float] = []
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.slept.append(seconds)
            self.now += seconds


def at(text: str) -> datetime:
    """An aware datetime from ISO text."""
    value = datetime.fromisoformat(text)
    assert value.tzinfo is not None
    return value
