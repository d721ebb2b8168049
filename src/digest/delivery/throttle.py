"""Pacing a send: the messages-per-second token bucket, retry backoff, and pauses after a failure."""

from __future__ import annotations

import random
import threading
import time
from typing import Callable

from digest.clock import Timer

Sleep = Callable[[float], None]


class TokenBucket:
    """Messages per second over the whole run; bursts of at most `burst` messages.

    Taking more tokens than are available puts the bucket in debt, and the caller sleeps the debt
    off, so the long-run rate is exact even when whole batches are taken at once.
    """

    def __init__(self, rate: float, *, burst: float | None = None, clock: Timer = time.monotonic,
                 sleep: Sleep = time.sleep):
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self.clock = clock
        self.sleep = sleep
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self, n: int = 1) -> float:
        """Take n tokens, sleeping as long as needed; returns the time slept."""
        if self.rate <= 0:
            return 0.0
        with self._lock:
            now = self.clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= n
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self.sleep(wait)
        return wait


def backoff_delay(tries: int, base: float, max_delay: float, retry_after: float | None = None,
                  rand: Callable[[], float] = random.random) -> float:
    """Exponential backoff with 'equal jitter' (half fixed, half random), at least retry_after."""
    ceiling = min(max_delay, base * (2 ** max(0, tries - 1)))
    delay = ceiling / 2 + rand() * ceiling / 2
    if retry_after:
        delay = max(delay, min(retry_after, max(max_delay, retry_after)))
    return delay


class Throttle:
    """Shared by the workers: the rate limit, plus a pause after a whole-transport failure."""

    def __init__(self, bucket: TokenBucket, clock: Timer, sleep: Sleep):
        self.bucket = bucket
        self.clock = clock
        self.sleep = sleep
        self._pause_until = 0.0
        self._lock = threading.Lock()

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._pause_until = max(self._pause_until, self.clock() + seconds)

    def wait(self, n: int) -> None:
        with self._lock:
            wait = self._pause_until - self.clock()
        if wait > 0:
            self.sleep(wait)
        self.bucket.acquire(n)


