"""The OS locks in the state folder: exclusive, never waiting, and clear errors when they cannot be taken."""

from __future__ import annotations

import pytest

from digest.errors import LedgerError
from digest.store.locks import FileLock


def test_a_second_lock_on_the_same_file_is_refused_and_names_the_holder(tmp_path):
    first, second = FileLock(tmp_path / "locks" / "a.lock"), FileLock(tmp_path / "locks" / "a.lock")
    assert first.try_acquire()
    try:
        assert not second.try_acquire()
        assert second.holder is not None and second.holder.isdigit()
    finally:
        first.release()
    assert second.try_acquire()
    second.release()


def test_a_full_disk_when_the_lock_is_taken_is_a_clear_error(small_disk):
    small_disk.fill()
    lock = FileLock(small_disk.path / "locks" / "issue.lock")
    with pytest.raises(LedgerError) as caught:
        lock.try_acquire()
    assert str(lock.path) in caught.value.message
    assert "No space left on device" in caught.value.message
    assert "free disk space" in (caught.value.hint or "")
    small_disk.free()  # the lock was not left half-taken: it works once there is room
    assert lock.try_acquire()
    lock.release()
