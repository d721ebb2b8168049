"""An exclusive, non-blocking OS lock on a file: the kernel releases it when the process dies."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .errors import LedgerError


class FileLock:
    """fcntl.flock on `path`; the file holds the owner's pid, only for messages (the flock is what counts)."""

    def __init__(self, path: Path, *, hint: str = "make the state folder ([paths] state) writable"):
        self.path = path
        self.hint = hint
        self.holder: str | None = None  # pid of the process holding it, when try_acquire() failed
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock; False (and .holder set) when another process holds it. Never waits."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise LedgerError(f"cannot create the lock file {self.path}: {exc.strerror}.", self.hint) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or None
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        self._fd = fd
        return True

    def release(self) -> None:
        """Drop the lock (the file stays; without the flock it means nothing)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
