"""File modes, whatever the umask: subscriber data private to its owner, the web version readable by all.

The state folder (the ledger: every column of the list, the suppression list; the locks) and the
outbox (every reader's message) are 0700 folders of 0600 files. The web version `digest build`
writes is meant to be served: 0755 folders of 0644 files.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600
PUBLIC_DIR, PUBLIC_FILE = 0o755, 0o644


def private_folder(path: Path, *, within: Path | None = None) -> Path:
    """Create `path` and make it 0700 if it is ours — and every folder from `within` (the state folder)
    down to it; the folders above keep the usual modes."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    folder = path
    while True:
        _chmod_own(folder, PRIVATE_DIR)  # also tightens a folder an earlier version left 0755
        if within is None or folder == within or folder == folder.parent or not folder.is_relative_to(within):
            return path
        folder = folder.parent


def open_private(path: Path, flags: int = os.O_RDWR) -> int:
    """os.open `path` (created when missing) as a 0600 file; a file from before is tightened to 0600."""
    fd = os.open(path, flags | os.O_CREAT, PRIVATE_FILE)
    try:
        if os.fstat(fd).st_uid == os.geteuid():
            os.fchmod(fd, PRIVATE_FILE)
    except OSError:
        os.close(fd)
        raise
    return fd


def make_private(path: Path) -> None:
    """chmod 0600 an existing file of ours (a ledger's -wal and -shm from an earlier version)."""
    if path.exists():
        _chmod_own(path, PRIVATE_FILE)


def make_public_tree(folder: Path) -> None:
    """0755 for `folder` and every folder below it, 0644 for every file: what a web server can serve."""
    os.chmod(folder, PUBLIC_DIR)
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            os.chmod(os.path.join(root, name), PUBLIC_DIR)
        for name in files:
            os.chmod(os.path.join(root, name), PUBLIC_FILE)


def _chmod_own(path: Path, mode: int) -> None:
    # Someone else's folder (a shared state folder set up by an admin) keeps the mode they chose.
    st = path.stat()
    if st.st_uid == os.geteuid() and (st.st_mode & 0o777) != mode:
        os.chmod(path, mode)
