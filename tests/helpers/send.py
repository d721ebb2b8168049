"""Helpers for the tests that drive `digest send` in-process: the signing keys, a reader list, the CLI."""

from __future__ import annotations

import csv
from pathlib import Path

from digest.cli import main

KEYS = "k1:i5ZgT4aPzsQZkU1mXD78PmMcWH4oGVLAc_WrUnF0kJo"  # a test key, made like the docs say


def write_list(path: Path, n: int, *, extra_rows=()) -> list[str]:
    """A list of n readers (plus extra raw rows); returns the valid addresses in order."""
    addresses = [f"reader{i:03d}@example.net" for i in range(n)]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["email", "first_name", "last_name", "organisation", "tags"])
        for i, a in enumerate(addresses):
            w.writerow([a, f"Reader{i}", "Example", "Org", "members"])
        for row in extra_rows:
            w.writerow(row)
    return addresses


def run(capsys, *args) -> tuple[int, str, str]:
    """Run the digest CLI in-process; (exit code, stdout, stderr)."""
    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err
