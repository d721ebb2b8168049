"""Benchmark: peak memory while streaming a big subscriber list through read_subscribers.

Writes a generated list of N rows (every 1000th row repeats an earlier address in capitals, so the
de-duplication works at scale too) and one of N/10 rows as the baseline, then reads each under
tracemalloc, alternating, for several rounds. Prints the medians of the peak traced memory and of the
time, and the ratio of the two peaks: a list held in memory would need about 10× the baseline; a stream
needs the de-duplication keys and little else. (tracemalloc slows the read down: the times are for
comparing the two lists, not a reading speed.)

Run: .venv/bin/python bench/memory.py [--rows 200000] [--rounds 3]
Figures, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
import types
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

sys.path.insert(0, str(REPO / "src"))


def write_list(path: Path, rows: int) -> None:
    """`rows` readers; every 1000th row repeats the address of the row 500 before it, in capitals."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("email,first_name,organisation,tags\r\n")
        for i in range(rows):
            email = f"READER{i - 500}@EXAMPLE.ORG" if i % 1000 == 999 else f"reader{i}@example.org"
            fh.write(f"{email},Reader {i},Organisation {i % 97},members;group{i % 7}\r\n")


def read_once(path: Path, rows: int) -> tuple[int, float]:
    """(peak traced bytes, seconds) for one full read of the list; checks what was read."""
    from digest.audience.subscribers import ListReport, read_subscribers

    report = ListReport()
    tracemalloc.start()
    try:
        start = time.perf_counter()
        stream = read_subscribers(path, report=report)
        if not isinstance(stream, types.GeneratorType):
            raise SystemExit("read_subscribers no longer returns a generator: this measures nothing")
        count = last_line = 0
        for sub in stream:
            count += 1
            last_line = sub.line
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    duplicates = rows // 1000
    got = (count, report.valid, report.duplicates, report.invalid)
    if got != (rows - duplicates, rows - duplicates, duplicates, 0):
        raise SystemExit(f"{path.name}: read (count, valid, duplicates, invalid) = {got}, "
                         f"expected {(rows - duplicates, rows - duplicates, duplicates, 0)}")
    expected_last = rows + 1 - (1 if rows % 1000 == 0 else 0)  # line 1 is the header
    if last_line != expected_last:
        raise SystemExit(f"{path.name}: last subscriber on line {last_line}, expected {expected_last}")
    return peak, seconds


def fmt_mb(samples: list[int]) -> str:
    return (f"median {statistics.median(samples) / 1e6:6.1f} MB   "
            f"(min {min(samples) / 1e6:.1f}, max {max(samples) / 1e6:.1f}, n={len(samples)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000, help="rows in the big list (the baseline has 1/10)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.rows < 10_000:
        parser.error("--rows must be at least 10000 (the baseline list has a tenth of them)")
    small_rows = args.rows // 10

    with tempfile.TemporaryDirectory() as tmp:
        big, small = Path(tmp) / "big.csv", Path(tmp) / "small.csv"
        write_list(big, args.rows)
        write_list(small, small_rows)
        read_once(small, small_rows)  # warm-up: imports, compiled patterns, email_validator's caches
        peaks: dict[Path, list[int]] = {big: [], small: []}
        times: dict[Path, list[float]] = {big: [], small: []}
        for r in range(1, args.rounds + 1):
            for path, rows in ((small, small_rows), (big, args.rows)):
                peak, seconds = read_once(path, rows)
                peaks[path].append(peak)
                times[path].append(seconds)
            print(f"  round {r}: {small_rows:,} rows peak {peaks[small][-1] / 1e6:5.1f} MB in "
                  f"{times[small][-1]:5.2f} s | {args.rows:,} rows peak {peaks[big][-1] / 1e6:5.1f} MB in "
                  f"{times[big][-1]:5.2f} s", flush=True)
        big_mb, small_mb = big.stat().st_size / 1e6, small.stat().st_size / 1e6

    print(f"read_subscribers, {args.rows:>9,} rows ({big_mb:5.1f} MB file)   {fmt_mb(peaks[big])}   "
          f"time median {statistics.median(times[big]):.2f} s")
    print(f"  baseline, {small_rows:>9,} rows ({small_mb:5.1f} MB file)   {fmt_mb(peaks[small])}   "
          f"time median {statistics.median(times[small]):.2f} s")
    print(f"peak, {args.rows:,} rows / {small_rows:,} rows: "
          f"{statistics.median(peaks[big]) / statistics.median(peaks[small]):.2f}× for 10× the rows")


if __name__ == "__main__":
    main()
