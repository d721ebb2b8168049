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
    stats.sent = 50
    progress(stats)
    clock.now += 1
    stats.sent = 100
    progress(stats)
    progress.close()
    assert out.getvalue() == ("\r  ██········ 50/200 · 0 failed · 0 deferred · measuring…\x1b[K"
                              "\r  █████····· 100/200 · 0 failed · 0 deferred · 50 msg/s · ETA 0:02\x1b[K\n")


def test_the_first_estimate_leaves_out_the_start_up():
    import io

    from digest.cli.progress import TerminalProgress
    from digest.delivery.options import RunStats

    clock = FakeClock()
    out = io.StringIO()
    progress = TerminalProgress(5000, out=out, clock=clock, width=10)
    stats = RunStats()
    clock.now += 1.4  # the first batch: a builder process starting, the first build, connecting
    stats.sent = 50
    progress(stats)
    assert "msg/s" not in out.getvalue() and "ETA" not in out.getvalue()  # one point: no rate yet
    for _ in range(2):  # then a batch of 50 every 0.09 s: ~550 msg/s
        clock.now += 0.09
        stats.sent += 50
        progress(stats)
    line = out.getvalue().rsplit("\r", 1)[-1]
    assert "556 msg/s" in line and "ETA 0:08" in line, line
