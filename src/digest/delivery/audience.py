"""The audience of one send: the list streamed, filtered by tags and suppressions, checked, counted."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

from digest.audience.subscribers import ListReport, Subscriber, read_subscribers
from digest.store.rows import RecipientRow

if TYPE_CHECKING:  # pragma: no cover
    from digest.delivery.personalize import Personalizer

INVALID_ROWS_KEPT = 5  # invalid rows a send keeps (and its summary names); `digest subscribers check` lists all


@dataclass
class AudienceCounts:
    """What fixing (or previewing) the audience found."""

    recipients: int = 0
    suppressed: int = 0
    invalid: int = 0
    duplicates: int = 0
    not_in_audience: int = 0   # valid subscribers without any of the wanted tags
    rows: int = 0
    invalid_rows: list = field(default_factory=list)  # the first few: [line, address cell, reason]

    def skipped(self) -> dict:
        """What the audience left out, as recorded in the ledger's send row (counts, and the first
        invalid rows so that a summary, even a resume's, can name them)."""
        return {"suppressed": self.suppressed, "invalid": self.invalid, "duplicates": self.duplicates,
                "not_in_audience": self.not_in_audience, "invalid_rows": self.invalid_rows}


def subscriber_from_row(row: RecipientRow) -> "Subscriber":
    """Rebuild a Subscriber from its ledger row (resume never re-reads the CSV)."""
    return Subscriber(email=row.email, name=row.name, fields=row.fields, tags=frozenset(row.tags), line=row.line,
                      key=row.key)




def stream_audience(list_path: Path, tags: Sequence[str], personalizer: "Personalizer", suppressed_keys: set[str],
                    counts: AudienceCounts, *, check: bool = True) -> Iterator[tuple]:
    """Stream the list: (key, email, name, fields, tags, line) for everyone who gets the issue.

    Every kept row is checked for missing merge fields (MergeError names field and line) before
    the caller commits anything; `counts` is filled in as the stream is consumed.
    """
    report = ListReport()
    for sub in read_subscribers(list_path, report=report, tags=tags or None):
        if sub.key in suppressed_keys:
            counts.suppressed += 1
            continue
        if check:
            personalizer.check(sub)
        counts.recipients += 1
        yield (sub.key, sub.email, sub.name, dict(sub.fields), tuple(sorted(sub.tags)), sub.line)
    counts.invalid, counts.duplicates = report.invalid, report.duplicates
    counts.invalid_rows = [[p.line, p.value, p.reason] for p in report.problems
                           if p.kind != "duplicate"][:INVALID_ROWS_KEPT]
    counts.not_in_audience, counts.rows = report.filtered_out, report.rows
