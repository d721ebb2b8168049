"""`digest send --due` as real processes (subprocess) against a real aiosmtpd server on 127.0.0.1.

Overlapping runs, SIGTERM (systemd stop) and SIGKILL mid-send, a render failure's exit code, and the
one quiet line when nothing is due. Times are relative to the real clock: these processes use it.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from digest.config import load_settings
from digest.store.ledger import Ledger, ledger_path
from tests.helpers.project import EXAMPLE_ISSUE

pytestmark = pytest.mark.slow

SLUG = "2024-01-scheduled"
READERS = 40
KEYS = "k1:UlsHjDZhFe2eJbhp5e5rHWSHuRG6kEB37KBVhJ0Aadc"
BUSY = "another `digest send --due` run is in progress"


@pytest.fixture
def proj(project: Path, smtp_server) -> Path:
    """The example project sending through the test SMTP server: 40 readers, batches of 5, 20 per second."""
    table = smtp_server.smtp_settings()
    smtp = "\n".join(f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in table.items())
    toml = project / "digest.toml"
    text = toml.read_text(encoding="utf-8").replace('transport = "outbox"\nrate = 0',
                                                    'transport = "smtp"\nrate = 20\nbatch_size = 5')
    assert 'transport = "smtp"' in text
    toml.write_text(text.replace("'", '"') + f"\n[smtp]\n{smtp}\n", encoding="utf-8")
    rows = ["email,first_name,last_name,organisation,tags"]
    rows += [f"reader{i:02d}@example.org,Reader{i},Test,Org {i},members" for i in range(READERS)]
    (project / "subscribers.example.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return project


def write_issue(project: Path, *, send_at: datetime, not_after: datetime | None = None, extra: str = "") -> None:
    text = (project / "issues" / f"{EXAMPLE_ISSUE}.yaml").read_text(encoding="utf-8")
    fields = f"send_at: {send_at.isoformat(timespec='seconds')}\n"
    if not_after:
        fields += f"not_after: {not_after.isoformat(timespec='seconds')}\n"
    text = text.replace("date: 2023-12-21\n", f"date: 2023-12-21\n{fields}{extra}", 1)
    (project / "issues" / f"{SLUG}.yaml").write_text(text, encoding="utf-8")


def due_now(project: Path, **kw) -> None:
    now = datetime.now(timezone.utc)
    write_issue(project, send_at=now - timedelta(minutes=1), not_after=now + timedelta(days=1), **kw)


def command() -> list[str]:
    return [sys.executable, "-m", "digest", "send", "--due"]


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env["DIGEST_UNSUBSCRIBE_KEYS"] = KEYS
    env["TZ"] = "Europe/Amsterdam"
    return env


def start(project: Path) -> subprocess.Popen:
    return subprocess.Popen(command(), cwd=project, env=environment(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(project: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command(), cwd=project, env=environment(), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)


def wait_for_deliveries(server, n: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Wait (for the other process, not for a clock) until the server accepted n messages."""
    deadline = time.monotonic() + timeout
    while sum(server.recipients().values()) < n:
        assert proc.poll() is None, f"the run ended early: {proc.communicate()}"
        assert time.monotonic() < deadline, "no deliveries"
        time.sleep(0.02)


def everyone() -> set[str]:
    return {f"reader{i:02d}@example.org" for i in range(READERS)}


def test_two_overlapping_runs_exactly_one_sends_and_everyone_gets_one_message(proj, smtp_server):
    due_now(proj)
    procs = [start(proj), start(proj)]  # the same moment, as two cron entries would
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    assert [r[0] for r in results] == [0, 0], results  # an overlap is not an error
    busy = [r for r in results if BUSY in r[1]]
    senders = [r for r in results if f"{SLUG}: sent — {READERS}/{READERS} sent" in r[1]]
    assert len(busy) == 1 and len(senders) == 1, results
    assert busy[0][1].count("\n") == 1 and busy[0][2] == ""  # one quiet line
    assert smtp_server.recipients() == collections.Counter(everyone())


def test_sigterm_mid_send_stops_after_the_batch_and_the_next_run_resumes_without_duplicates(proj, smtp_server):
    due_now(proj)
    proc = start(proj)
    wait_for_deliveries(smtp_server, 10, proc)
    proc.send_signal(signal.SIGTERM)  # what systemd sends when the service is stopped
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, (out, err)
    assert "stopped — stopped by a signal" in err and "the next run resumes" in err
    first = sum(smtp_server.recipients().values())
    assert 10 <= first < READERS
    assert "\r" not in out and "\x1b" not in out  # plain log lines outside a terminal

    again = run(proj)
    assert again.returncode == 0, (again.stdout, again.stderr)
    assert f"{SLUG}: {READERS - first} to send, {first} already sent" in again.stdout
    assert smtp_server.recipients() == collections.Counter(everyone())


def test_sigkill_mid_send_frees_the_lock_and_only_in_flight_rows_can_go_twice(proj, smtp_server):
    due_now(proj)
    proc = start(proj)
    wait_for_deliveries(smtp_server, 10, proc)
    proc.kill()  # no clean-up at all: the kernel drops the flock with the process
    proc.communicate(timeout=60)

    again = run(proj)
    assert again.returncode == 0, (again.stdout, again.stderr)
    assert BUSY not in again.stdout
    got = smtp_server.recipients()
    assert set(got) == everyone()
    twice = {address for address, n in got.items() if n > 1}
    assert max(got.values()) <= 2
    with Ledger(ledger_path(load_settings(proj / "digest.toml")), readonly=True) as ledger:
        send = ledger.get_send(SLUG)
        in_doubt = {r.email for r in ledger.recipients(send.id) if r.in_doubt}
        assert ledger.counts(send.id)["sent"] == READERS
    assert twice <= in_doubt  # only rows that were in flight when the process died
    assert len(in_doubt) <= 10  # at most (connections + 1) batches of 5


def test_a_render_failure_sends_nothing_and_exits_non_zero_with_the_reason_on_stderr(proj, smtp_server):
    due_now(proj, extra="template: nosuch\n")
    result = run(proj)
    assert result.returncode == 1
    assert f"{SLUG}: failed — template 'nosuch.mjml.j2' not found" in result.stderr
    assert smtp_server.deliveries == []


def test_nothing_due_is_one_quiet_line_and_exit_0(proj, smtp_server):
    write_issue(proj, send_at=datetime.now(timezone.utc) + timedelta(days=2, hours=3, minutes=30))
    result = run(proj)
    assert result.returncode == 0 and result.stderr == ""
    [line] = result.stdout.splitlines()
    stamp, _, text = line.partition(" ")
    assert datetime.fromisoformat(stamp).tzinfo is not None  # a timestamped log line
    assert text.startswith(f"nothing due (next: {SLUG} at ") and text.endswith(", in 2 days 3 h)")
    assert smtp_server.deliveries == []
