"""Send progress as the CLI shows it: a log line every N messages or seconds, one redrawn terminal line."""

from __future__ import annotations

from tests.helpers.clock import FakeClock


def test_log_progress_prints_every_n_messages_or_seconds():
    from digest.cli.progress import LogProgress
    from digest.delivery.options import RunStats

    clock = FakeClock()
    lines: list[str] = []
    progress = LogProgress(3000, lines.append, every=1000, seconds=30, clock=clock)
    stats = RunStats()
    for sent in range(100, 3001, 100):
        clock.now += 0.1
        stats.sent = sent
        progress(stats)
    assert len(lines) == 3
    assert lines[0].endswith("progress 1,000/3,000 · 0 failed · 0 deferred · 1,000 msg/s · ETA 0:02")
    clock.now += 31  # nothing new for 30 s: still a line, so a stuck send is visible in the log
    progress(stats)
    assert len(lines) == 4


def test_terminal_progress_redraws_one_line():
    import io

    from digest.cli.progress import TerminalProgress
    from digest.delivery.options import RunStats

    clock = FakeClock()
    out = io.StringIO()
    progress = TerminalProgress(200, out=out, clock=clock, width=10)
    stats = RunStats()
    clock.now += 1
    stats.sent = 100
    progress(stats)
    progress.close()
    assert out.getvalue() == "\r  █████····· 100/200 · 0 failed · 0 deferred · 100 msg/s · ETA 0:01\x1b[K\n"
