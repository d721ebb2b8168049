"""When a run stops on its own: the consecutive-failure rule that pauses a send whose sender is broken.

A run also stops on a refused login, a builder failure, Ctrl-C or SIGTERM, and when its caller says
so (the --due runner at not_after); those are decided where they happen. This rule is the one that
counts: `max_consecutive_failures` refusals or deferrals in a row, with no message accepted between
them, pause the run (resumable: run the same command again once the cause is fixed).
"""

from __future__ import annotations


class FailureStreak:
    """Counts failures since the last accepted message; `limit` 0 never stops."""

    def __init__(self, limit: int):
        self.limit = limit
        self.count = 0

    def success(self) -> None:
        """A message was accepted: the streak is over."""
        self.count = 0

    def failure(self, n: int = 1) -> str | None:
        """Count n more failures; the reason to stop once the limit is reached, else None."""
        self.count += n
        if self.limit and self.count >= self.limit:
            return (f"{self.count} failures in a row (max_consecutive_failures = {self.limit}); "
                    f"the send is paused — check the errors, then run the same command again")
        return None
