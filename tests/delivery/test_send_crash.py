"""Real `digest send` processes: kill -9 part-way and resume, two at once, Ctrl-C, a read-only or full ledger."""

from __future__ import annotations

import collections
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.disk import SmallDisk, mount_tmpfs
from tests.helpers.project import EXAMPLE_ISSUE
from tests.helpers.send import KEYS, write_list

pytestmark = pytest.mark.slow


@pytest.fixture
def crashproject(project, smtp_server):
    """The example project pointed at the aiosmtpd server, with a 300-reader list."""
    table = smtp_server.smtp_settings()
    with open(project / "digest.toml", "a", encoding="utf-8") as fh:
        fh.write("\n[smtp]\n" + "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in table.items()))
    addresses = write_list(project / "list.csv", 300)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(DIGEST_UNSUBSCRIBE_KEYS=KEYS, DIGEST_SEND_TRANSPORT="smtp", DIGEST_PATHS_SUBSCRIBERS="list.csv",
               DIGEST_SEND_BATCH_SIZE="10", DIGEST_SEND_RETRY_BASE_DELAY="0.01", PYTHONUNBUFFERED="1",
               PYTHONFAULTHANDLER="1")
    return project, smtp_server, addresses, env


def digest(project: Path, env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "digest", *args], cwd=project, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)


def rows_in(project: Path, state: str) -> set[str]:
    db = sqlite3.connect(project / ".digest" / "ledger.sqlite3")
    try:
        return {r[0] for r in db.execute("SELECT email FROM recipients WHERE state=?", (state,))}
    finally:
        db.close()


def test_kill_9_part_way_then_resume_reaches_everyone(crashproject):
    project, server, addresses, env = crashproject
    proc = digest(project, env, "send", EXAMPLE_ISSUE, "--yes", "--rate", "150", "--connections", "2")
    wait_for(lambda: len(server.deliveries) >= 60 or proc.poll() is not None)
    status = digest(project, env, "status", EXAMPLE_ISSUE)
    out, err = status.communicate(timeout=60)
    assert proc.poll() is None, "the send ended before it could be killed"
    assert f"sending now (process {proc.pid})" in out, out + err
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = collections.Counter(server.recipients())
    in_flight = rows_in(project, "sending")
    status = digest(project, env, "status", EXAMPLE_ISSUE)
    out, err = status.communicate(timeout=60)
    assert "sending now" not in out, out + err
    if in_flight:
        assert "left by a run that was killed: possibly delivered" in out, out + err
    # Only claimed batches can be in doubt: (connections + 1) batches of 10 at most.
    assert len(in_flight) <= 30
    assert 0 < sum(before.values()) < 300

    proc = digest(project, env, "send", EXAMPLE_ISSUE, "--yes")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    if in_flight:
        assert f"{len(in_flight)} were in flight when an earlier run stopped" in out
    received = server.recipients()
    assert set(received) == set(addresses)                    # everyone got the issue
    twice = {a for a, n in received.items() if n > 1}
    assert max(received.values()) <= 2
    assert twice <= in_flight                                  # duplicates only among the in-flight ones
    db = sqlite3.connect(project / ".digest" / "ledger.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT count(*) FROM recipients WHERE state='sent'").fetchone()[0] == 300
    assert db.execute("SELECT count(*) FROM recipients WHERE in_doubt=1").fetchone()[0] == len(in_flight)


def test_a_second_send_of_the_same_issue_refuses_at_once(crashproject):
    project, server, addresses, env = crashproject
    first = digest(project, env, "send", EXAMPLE_ISSUE, "--yes", "--rate", "20")
    try:
        wait_for(lambda: len(server.deliveries) >= 1)
        started = time.monotonic()
        second = digest(project, env, "send", EXAMPLE_ISSUE, "--yes")
        out, err = second.communicate(timeout=60)
        assert second.returncode == 75
        assert f"issue '{EXAMPLE_ISSUE}' is already being sent (process {first.pid} holds" in err
        assert time.monotonic() - started < 20
        # Ctrl-C on the first: it stops cleanly, hands unsent batches back, and can be resumed.
        first.send_signal(signal.SIGINT)
        out, err = first.communicate(timeout=60)
        assert first.returncode == 4, out + err
        assert "interrupted" in err
        assert rows_in(project, "sending") == set()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    # The lock went with the process: the resume runs and completes.
    proc = digest(project, env, "send", EXAMPLE_ISSUE, "--yes")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    assert server.recipients() == collections.Counter({a: 1 for a in addresses})


def test_sigterm_stops_a_send_like_ctrl_c(crashproject):
    project, server, addresses, env = crashproject
    proc = digest(project, env, "send", EXAMPLE_ISSUE, "--yes", "--rate", "150", "--connections", "2")
    try:
        wait_for(lambda: len(server.deliveries) >= 50 or proc.poll() is not None)
        assert proc.poll() is None, "the send ended before it could be stopped"
        proc.send_signal(signal.SIGTERM)  # what timeout, docker stop and systemd send
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 4, out + err
    assert "interrupted (SIGTERM)" in err and "Summary" in out
    assert rows_in(project, "sending") == set()              # nobody left in doubt
    assert set(server.recipients()) == rows_in(project, "sent")
    proc = digest(project, env, "send", EXAMPLE_ISSUE, "--yes")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    assert "in flight" not in out
    assert server.recipients() == collections.Counter({a: 1 for a in addresses})


def test_sigterm_stops_a_retry_like_ctrl_c(crashproject):
    project, server, addresses, env = crashproject
    for address in addresses[:100]:
        server.script.on("RCPT", address, "451 4.3.0 try again later", always=True)
    first = dict(env, DIGEST_SEND_RETRIES="0", DIGEST_SEND_MAX_CONSECUTIVE_FAILURES="0")
    out, err = digest(project, first, "send", EXAMPLE_ISSUE, "--yes").communicate(timeout=120)
    assert len(rows_in(project, "deferred")) == 100, out + err
    server.script.always.clear()
    proc = digest(project, env, "retry", EXAMPLE_ISSUE, "--yes", "--rate", "100")
    try:
        wait_for(lambda: len(server.deliveries) >= 220 or proc.poll() is not None)
        assert proc.poll() is None, "the retry ended before it could be stopped"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 4, out + err
    assert "interrupted (SIGTERM)" in err
    assert rows_in(project, "sending") == set()
    assert set(server.recipients()) == rows_in(project, "sent")
    out, err = digest(project, env, "retry", EXAMPLE_ISSUE, "--yes").communicate(timeout=120)
    assert server.recipients() == collections.Counter({a: 1 for a in addresses}), out + err


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


def _state_on_tmpfs(project: Path, mounts: list[Path], size: str = "4m") -> SmallDisk:
    """The project's state folder on a small tmpfs of its own (skipped where it cannot be mounted)."""
    state = project / ".digest"
    state.mkdir()
    if not mount_tmpfs(state, size):
        pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)")
    mounts.append(state)
    return SmallDisk(state)


@pytest.fixture
def mounts():
    """Mount points to undo after the test (needs root with CAP_SYS_ADMIN; skipped otherwise)."""
    done: list[Path] = []
    yield done
    for target in reversed(done):
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


def test_read_only_ledger_stops_before_sending(crashproject, mounts):
    project, server, addresses, env = crashproject
    proc = digest(project, env, "send", EXAMPLE_ISSUE, "--yes", "--limit", "5")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    ledger = project / ".digest" / "ledger.sqlite3"
    # A read-only bind mount of the ledger file itself: a real EROFS for root too.
    if not (_mount("--bind", str(ledger), str(ledger)) and (mounts.append(ledger) or True)
            and _mount("-o", "remount,ro,bind", str(ledger))):
        pytest.skip("cannot bind-mount read-only here (needs root with CAP_SYS_ADMIN)")
    with pytest.raises(OSError):
        open(ledger, "r+b")
    proc = digest(project, env, "send", EXAMPLE_ISSUE, "--yes")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "ledger.sqlite3" in err and ("readonly database" in err or "Read-only file system" in err)
    assert "writable" in err and "nothing was sent after this point" in err
    assert len(server.deliveries) == 5


def test_full_disk_stops_before_sending(crashproject, mounts):
    project, server, addresses, env = crashproject
    disk = _state_on_tmpfs(project, mounts)
    proc = digest(project, env, "send", EXAMPLE_ISSUE, "--yes", "--limit", "5")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    disk.fill()  # to the last block
    proc = digest(project, env, "send", EXAMPLE_ISSUE, "--yes")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    assert "ledger.sqlite3" in err and "full" in err
    assert len(server.deliveries) == 5


def test_full_disk_at_the_first_send_is_a_clear_error(crashproject, mounts):
    project, server, addresses, env = crashproject
    disk = _state_on_tmpfs(project, mounts)
    disk.fill()  # full before the send ever started: its first write is the lock file's pid
    proc = digest(project, env, "send", EXAMPLE_ISSUE, "--yes")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    assert "Traceback" not in err
    assert f"{EXAMPLE_ISSUE}.lock" in err and "No space left on device" in err
    assert "free disk space" in err
    assert server.deliveries == []


def test_ctrl_c_with_a_builder_process_hands_everything_back(crashproject):
    project, server, addresses, env = crashproject
    addresses = write_list(project / "list.csv", 2000)  # 2,000 or more: messages are built in another process
    proc = digest(project, env, "send", EXAMPLE_ISSUE, "--yes", "--rate", "200")
    wait_for(lambda: len(server.deliveries) >= 100 or proc.poll() is not None)
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        out, err = proc.communicate()
    assert proc.returncode == 4, out + err
    assert rows_in(project, "failed") == set() and rows_in(project, "sending") == set()
    proc = digest(project, env, "send", EXAMPLE_ISSUE, "--yes")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    assert server.recipients() == collections.Counter({a: 1 for a in addresses})


def test_disk_full_in_the_middle_of_a_send_then_resume(crashproject, mounts):
    project, server, addresses, env = crashproject
    disk = _state_on_tmpfs(project, mounts)
    proc = digest(project, env, "send", EXAMPLE_ISSUE, "--yes", "--rate", "100", "--connections", "2")
    wait_for(lambda: len(server.deliveries) >= 50 or proc.poll() is not None)
    disk.fill()  # the disk fills up while the send runs
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    assert "database or disk is full" in err
    assert len(server.deliveries) < 300
    disk.free()
    in_doubt = rows_in(project, "sending")
    assert len(in_doubt) <= 3 * 10
    # Every message that went out is accounted for: recorded as sent, or claimed (in doubt).
    assert set(server.recipients()) <= rows_in(project, "sent") | in_doubt
    proc = digest(project, env, "send", EXAMPLE_ISSUE, "--yes")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    received = server.recipients()
    assert set(received) == set(addresses)
    assert {a for a, n in received.items() if n > 1} <= in_doubt


def test_disk_full_with_4_connections_sends_at_most_one_unrecorded_batch_per_connection(crashproject, mounts):
    project, server, addresses, env = crashproject
    addresses = write_list(project / "list.csv", 1500)
    disk = _state_on_tmpfs(project, mounts, "8m")
    proc = digest(project, env, "send", EXAMPLE_ISSUE, "--yes", "--connections", "4")
    wait_for(lambda: len(server.deliveries) >= 300 or proc.poll() is not None)
    disk.fill()  # the disk fills up while four connections send
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    assert "disk is full" in err
    disk.free()
    sent, in_doubt = rows_in(project, "sent"), rows_in(project, "sending")
    received = set(server.recipients())
    assert received <= sent | in_doubt
    # What went out without its result recorded: only what was on the wire, one batch per connection.
    assert len(received - sent) <= 4 * 10, len(received - sent)
    proc = digest(project, env, "send", EXAMPLE_ISSUE, "--yes")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    received = server.recipients()
    assert set(received) == set(addresses)
    assert len({a for a, n in received.items() if n > 1}) <= 4 * 10


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_builder_processes_do_not_outlive_a_killed_send(crashproject):
    project, server, addresses, env = crashproject
    write_list(project / "list.csv", 2000)  # 2,000 or more: messages are built in another process
    proc = digest(project, env, "send", EXAMPLE_ISSUE, "--yes", "--rate", "200")
    wait_for(lambda: len(server.deliveries) >= 50 or proc.poll() is not None)
    children = _children(proc.pid)
    assert children, "expected a builder process"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    try:
        wait_for(lambda: not any(_alive(c) for c in children), timeout=10)
    finally:
        for child in children:  # never leave orphans behind, even when the test fails
            if _alive(child):
                os.kill(child, signal.SIGKILL)


def test_sigterm_to_the_whole_process_group_stops_a_send_with_builders_like_ctrl_c(crashproject):
    # systemd (KillMode=control-group), `docker stop` and a terminal's hang-up signal every process
    # of the group: the builder process too. It must leave the stop to the sending process.
    project, server, addresses, env = crashproject
    addresses = write_list(project / "list.csv", 2000)  # 2,000 or more: messages are built in another process
    proc = subprocess.Popen([sys.executable, "-m", "digest", "send", EXAMPLE_ISSUE, "--yes", "--rate", "200"],
                            cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        wait_for(lambda: len(server.deliveries) >= 100 or proc.poll() is not None)
        assert proc.poll() is None, "the send ended before it could be stopped"
        os.killpg(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 4, out + err
    assert "interrupted (SIGTERM)" in err and "builder" not in err, err
    assert rows_in(project, "sending") == set()
    out, err = digest(project, env, "send", EXAMPLE_ISSUE, "--yes").communicate(timeout=120)
    assert server.recipients() == collections.Counter({a: 1 for a in addresses})
