"""When a run stops on its own: the consecutive-failure rule that pauses a send whose sender is broken.

A run also stops on a refused login, a builder failure, Ctrl-C or SIGTERM, and when its caller says
so (the --due runner at not_after); those are decided where they happen. This rule is the one that
counts: `max_consecutive_failures` failures in a row, with no message accepted between them, pause
the run (resumable: run the same command again once the cause is fixed).

What is a failure: a refusal (5xx, a provider's "rejected"), a message that could not be built, and
a deferral (4xx, a dropped connection, an outage) whose in-run retries are used up. A deferral that
this run will retry is not one: a server that greylists, or throttles in bursts, answers 4xx to a
first attempt and accepts the retry, and must not pause the send before its own retries fire. So
the rule catches a broken sender (refused everywhere, every retry failing), not a server asking
us to come back later.
"""

from __future__ import annotations

import threading


class FailureStreak:
    """Counts failures since the last accepted message; `limit` 0 never stops."""

    def __init__(self, limit: int):
        self.limit = limit
        self.count = 0     # failures since the last accepted message: what the limit applies to
        self.waiting = 0   # deferrals since then that this run retries (they do not count)

    @property
    def in_a_row(self) -> int:
        """Failures and deferrals since the last accepted message (what a pause grows with)."""
        return self.count + self.waiting

    def success(self) -> None:
        """A message was accepted: the streak is over."""
        self.count = 0
        self.waiting = 0

    def deferral(self, n: int = 1, *, retried: bool) -> str | None:
        """n deferrals: no failure while this run retries them, n failures once their retries are used up."""
        if retried:
            self.waiting += n
            return None
        return self.failure(n)

    def failure(self, n: int = 1) -> str | None:
        """Count n more failures; the reason to stop once the limit is reached, else None."""
        self.count += n
        if self.limit and self.count >= self.limit:
            return (f"{self.count} failures in a row (max_consecutive_failures = {self.limit}); "
                    f"the send is paused — check the errors, then run the same command again")
        return None


class StopRequest(threading.Event):
    """Set when someone asks a run to stop between batches (Ctrl-C, SIGTERM); `reason` says who."""

    reason: str = "stop requested"

    def request(self, reason: str) -> None:
        """Ask the run to stop: no new batch is claimed, queued ones go back, in-flight ones are recorded."""
        if not self.is_set():
            self.reason = reason
        self.set()
