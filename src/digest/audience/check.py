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


def no_valid_rows_hint(listed: ListReport, name: str) -> str:
    """What to do about a list with no usable row: often a header and rows with different delimiters."""
    delimiters = {",": "commas", ";": "semicolons", "\t": "tabs"}
    if listed.rows and listed.problems:
        value = listed.problems[0].value
        for delimiter, word in delimiters.items():
            if delimiter != listed.delimiter and delimiter in value:
                return (f"the header is separated by {delimiters.get(listed.delimiter, listed.delimiter)} but "
                        f"the rows by {word}: save the file with one delimiter")
    return f"every row needs a valid address in the email column: digest subscribers check {name}"
