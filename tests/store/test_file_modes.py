"""Subscriber data on disk is readable by its owner only (0700 folders, 0600 files), whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.helpers.project import EXAMPLE_ISSUE
from tests.helpers.send import KEYS, run


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask():
    old = os.umask(0o022)  # the usual one: new files 0644, new folders 0755
    yield
    os.umask(old)


def test_the_ledger_and_its_wal_files_are_private(tmp_path, open_umask):
    from digest.store.ledger import Ledger

    state = tmp_path / "project" / ".digest"
    with Ledger(state / "ledger.sqlite3") as ledger:
        ledger.suppress("ann@example.org", "unsubscribed")
        files = sorted(p.name for p in state.iterdir())
        assert {"ledger.sqlite3", "ledger.sqlite3-wal", "ledger.sqlite3-shm"} <= set(files)
        assert {p.name: mode(p) for p in state.iterdir()} == dict.fromkeys(files, 0o600)
    assert mode(state) == 0o700
    assert mode(state.parent) == 0o755  # the folders above are not ours to close


def test_a_state_folder_an_earlier_version_left_open_is_closed(tmp_path, open_umask):
    from digest.store.ledger import Ledger

    state = tmp_path / ".digest"
    with Ledger(state / "ledger.sqlite3"):
        pass
    os.chmod(state, 0o755)
    for p in state.iterdir():
        os.chmod(p, 0o644)
    with Ledger(state / "ledger.sqlite3"):
        assert {mode(p) for p in state.iterdir()} == {0o600}
    assert mode(state) == 0o700


def test_lock_files_are_private(project, settings, open_umask):
    from digest.store.locks import DueLock, SendLock

    with SendLock(settings, EXAMPLE_ISSUE) as lock:
        assert mode(lock.path) == 0o600 and mode(lock.path.parent) == 0o700
    due = DueLock(settings)
    assert due.acquire()
    try:
        assert mode(due.path) == 0o600 and mode(due.path.parent) == 0o700
    finally:
        due.release()


@pytest.mark.parametrize("fmt", ["eml", "maildir"])
def test_a_send_leaves_only_private_files_in_the_state_folder_and_the_outbox(project, monkeypatch, capsys,
                                                                             open_umask, fmt):
    monkeypatch.setenv("DIGEST_UNSUBSCRIBE_KEYS", KEYS)
    monkeypatch.setenv("DIGEST_OUTBOX_FORMAT", fmt)
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes")
    assert code == 0, out + err
    for folder in (project / ".digest", project / "out" / "outbox"):
        folders = [folder, *(p for p in folder.rglob("*") if p.is_dir())]
        files = [p for p in folder.rglob("*") if p.is_file()]
        assert files, folder
        assert {str(p.relative_to(project)): mode(p) for p in folders} == \
            {str(p.relative_to(project)): 0o700 for p in folders}
        assert {str(p.relative_to(project)): mode(p) for p in files} == \
            {str(p.relative_to(project)): 0o600 for p in files}
