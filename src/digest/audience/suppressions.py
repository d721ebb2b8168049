"""The suppression list as people hand it over: a CSV of addresses to import (email[,reason])."""

from __future__ import annotations

import csv
from pathlib import Path

from digest.addresses import check_address
from digest.errors import SubscriberError


def read_suppression_file(path: Path, default_reason: str) -> list[tuple[str, str]]:
    """(email, reason) pairs from a CSV of `email[,reason]` rows; an optional header row is skipped.

    A row whose first cell is not an address is an error naming the file and line (nothing is
    imported then: a half-imported list is worse than none).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SubscriberError(f"{path}: not UTF-8 text (byte {exc.start}).",
                              "save it as CSV UTF-8: email[,reason] per line") from None
    rows: list[tuple[str, str]] = []
    for line_no, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or not row[0].strip():
            continue
        email_cell = row[0].strip()
        if line_no == 1 and "@" not in email_cell:
            continue  # header row
        check_address(email_cell, "fix the row (the first column holds the address); nothing was imported",
                      where=f"{path}:{line_no}: ")
        rows.append((email_cell, (row[1].strip() if len(row) > 1 and row[1].strip() else default_reason)))
    return rows
