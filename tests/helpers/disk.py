"""A really full disk for tests: a small tmpfs mounted for the test (needs root with CAP_SYS_ADMIN;
the test is skipped otherwise), and a helper that fills it to the last block.

Fixtures: `small_disk` (a mounted, still empty 4 MB file system; `small_disk.fill()` fills it,
`small_disk.free()` frees it again).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from typing import Iterator

import pytest


class SmallDisk:
    """A tmpfs of a few MB at `path`."""

    def __init__(self, path: Path):
        self.path = path
        self._filler = path / ".filler"

    def fill(self) -> None:
        """Write a file until the file system says ENOSPC: every later write that needs a block fails."""
        with open(self._filler, "ab", buffering=0) as fh:
            try:
                while True:
                    fh.write(b"\0" * 4096)
            except OSError:
                pass

    def free(self) -> None:
        """Remove the filler again."""
        self._filler.unlink(missing_ok=True)


def mount_tmpfs(target: Path, size: str = "4m") -> bool:
    """Mount a tmpfs of `size` on `target` (an existing folder); False when this machine does not let us."""
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", f"digest-test-{uuid.uuid4().hex[:8]}",
                           str(target)], capture_output=True).returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """A 4 MB tmpfs mounted on a fresh folder for this test, unmounted afterwards."""
    target = tmp_path / "disk"
    target.mkdir()
    if os.geteuid() != 0 or not mount_tmpfs(target):
        pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)")
    try:
        yield SmallDisk(target)
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)
