"""`digest subscribers check`: read a list as a send would, and count who it would reach."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from digest.audience.subscribers import ListReport, read_subscribers
from digest.store.suppressions import suppressed_keys

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings


@dataclass
class ListCheck:
    """The list's report (every problem with its line) and the audience it gives."""

    path: Path
    report: ListReport
    audience: int            # valid rows (with one of the tags, when tags were given)
    suppressed: int          # of those, on the suppression list
    suppressed_note: str | None

    @property
    def recipients(self) -> int:
        """Who a send would reach."""
        return self.audience - self.suppressed


def check_list(settings: "Settings", path: Path | None = None, tags: Sequence[str] = ()) -> ListCheck:
    """Read the list (default: [paths] subscribers) without stopping at bad rows; send nothing."""
    path = path or settings.path("subscribers")
    keys, note = suppressed_keys(settings)
    report = ListReport()
    audience = suppressed = 0
    for sub in read_subscribers(path, strict=False, report=report, tags=tags):
        audience += 1
        suppressed += sub.key in keys
    return ListCheck(path=path, report=report, audience=audience, suppressed=suppressed, suppressed_note=note)
