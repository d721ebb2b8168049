"""Exclusive, non-blocking OS locks on files in the state folder: the kernel releases them when the process dies."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from typing import TYPE_CHECKING

from digest.errors import LedgerError, SendLockedError
from digest.filemodes import open_private, private_folder

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings


class FileLock:
    """fcntl.flock on `path`; the file holds the owner's pid, only for messages (the flock is what counts)."""

    def __init__(self, path: Path, *, hint: str = "make the state folder ([paths] state) writable",
                 state: Path | None = None):
        self.path = path
        self.hint = hint
        self.state = state or path.parent  # made private (0700) down to the lock's folder
        self.holder: str | None = None  # pid of the process holding it, when try_acquire() failed
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock; False (and .holder set) when another process holds it. Never waits."""
        try:
            private_folder(self.path.parent, within=self.state)
            fd = open_private(self.path)
        except OSError as exc:
            raise LedgerError(f"cannot create the lock file {self.path}: {exc.strerror}.", self.hint) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or None
            os.close(fd)
            return False
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        except OSError as exc:
            # A full (or failing) disk: the first write of a send. Nothing has been sent yet.
            os.close(fd)
            hint = ("free disk space, then run the same command again: nothing was sent"
                    if exc.errno == errno.ENOSPC else self.hint)
            raise LedgerError(f"cannot write the lock file {self.path}: {exc.strerror}.", hint) from exc
        self._fd = fd
        return True

    def held_by(self) -> str | None:
        """Who holds the lock now: their pid ('' if the file does not say), or None when nobody does.

        Probes with a shared flock taken and dropped at once (it never creates the file). In those
        few microseconds a process trying to take the lock would be told it is held — a race
        narrow enough for a status display, which is all this is for.
        """
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return None  # no lock file: nobody has ever held it (or it cannot be read: cannot tell)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return os.pread(fd, 64, 0).decode("ascii", "replace").strip()
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def release(self) -> None:
        """Drop the lock (the file stays; without the flock it means nothing)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class SendLock(FileLock):
    """The per-issue lock: <state>/locks/<slug>.lock, so two sends of one issue never overlap."""

    def __init__(self, settings: "Settings", slug: str):
        super().__init__(settings.path("state") / "locks" / f"{slug}.lock", state=settings.path("state"))
        self.slug = slug

    def acquire(self) -> "SendLock":
        """Take the lock or raise SendLockedError at once (never waits)."""
        if not self.try_acquire():
            raise SendLockedError(
                f"issue '{self.slug}' is already being sent (process {self.holder or 'another process'} "
                f"holds {self.path}).",
                f"wait for it to finish, or look at it with: digest status {self.slug}")
        return self

    def __enter__(self) -> "SendLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


class DueLock(FileLock):
    """The lock for one whole `digest send --due` run: <state>/send-due.lock."""

    def __init__(self, settings: "Settings"):
        super().__init__(settings.path("state") / "send-due.lock",
                         hint="make the state folder ([paths] state) writable by the user cron runs as")

    def acquire(self) -> bool:
        """Take the lock; False (and .holder set) when another process holds it. Never waits."""
        if self.try_acquire():
            return True
        self.holder = self.holder or "unknown"
        return False
