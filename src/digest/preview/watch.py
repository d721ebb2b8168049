"""Finding changed files by polling their stamps (mtime in ns, size, inode, and a checksum of small files).

Polling a few times a second rather than an OS file-watching API: the watched set is small
(digest.toml, the issues and templates folders, the subscriber list), it follows the settings when
digest.toml moves a folder, and polling behaves the same on every file system — network shares,
Docker and WSL mounts where inotify events never arrive — and with every editor's way of saving (in
place, or write-new-then-rename).
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Iterable, Iterator

POLL_INTERVAL = 0.3  # seconds between scans of the watched files: a change shows within ~0.5 s
HASH_LIMIT = 256 * 1024  # files up to this size are compared by content too, not only by mtime


def file_stamp(path: Path) -> tuple | None:
    """What tells one version of a file from the next; None when it does not exist."""
    try:
        st = os.stat(path)
        # Small files also get a checksum: file systems with coarse timestamps (FAT, some network
        # shares; Linux itself stamps in clock ticks of a few ms) can leave a quick same-size
        # rewrite with an unchanged mtime. Reading ~30 small files a few times a second costs ~1 ms.
        crc = zlib.crc32(path.read_bytes()) if st.st_size <= HASH_LIMIT else None
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino, crc)


def _ignored(name: str) -> bool:
    # Editor droppings (.swp, .#lock, backup~, 4913 probe files of vim) are not content.
    return name.startswith((".", "#")) or name.endswith(("~", ".swp", ".swx", ".tmp")) or name == "4913"


def walk(folder: Path) -> Iterator[Path]:
    """Every file below `folder`, editor droppings left out."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not _ignored(d)]
        for name in files:
            if not _ignored(name):
                yield Path(root) / name


def scan(files: Iterable[Path]) -> dict[Path, tuple | None]:
    """The stamp of each file."""
    return {path: file_stamp(path) for path in files}


def changed_files(old: dict[Path, tuple | None], new: dict[Path, tuple | None]) -> list[Path]:
    """Files added, removed or changed between two scans, sorted."""
    return sorted(p for p in set(new) | set(old) if new.get(p) != old.get(p))
