"""Spotting repeated addresses in a list of any size, in a few bytes per row."""

from __future__ import annotations

from array import array


class SeenAddresses:
    """Which addresses were already seen, and on which line: a compact open-addressing hash table.

    Each address_key is reduced to a 64-bit digest kept in a typed array next to a 4-byte line
    number. Measured for one million addresses: a dict of key strings → line takes ~134 MB, a set of
    8-byte blake2b digests ~75 MB (and has no line), these two arrays ~25 MB. The digest is Python's
    own str hash: 64-bit SipHash with a random per-process key, computed in C and cached on the
    string, so it costs no allocation per row (blake2b costs four); the table lives only for one
    read, so a hash that differs between runs is fine. Two different people share a digest with
    probability ~n²/2⁶⁵ (about 3·10⁻⁸ for a million); if it ever happened, the later one would be
    reported as a duplicate, never dropped silently.
    """

    def __init__(self, slots: int = 1 << 12):
        self._digests = array("Q", [0]) * slots  # 0 marks an empty slot
        self._lines = array("I", [0]) * slots
        self._count = 0

    def first_line(self, key: str, line: int) -> int | None:
        """The line where `key` was first seen; None (and remember `line`) when it is new."""
        digest = (hash(key) & 0xFFFF_FFFF_FFFF_FFFF) or 1
        digests = self._digests
        mask = len(digests) - 1
        i = digest & mask
        while True:
            current = digests[i]
            if current == 0:
                digests[i] = digest
                self._lines[i] = line
                self._count += 1
                if self._count * 2 > len(digests):
                    self._grow()
                return None
            if current == digest:
                return self._lines[i]
            i = (i + 1) & mask

    def _grow(self) -> None:
        old_digests, old_lines = self._digests, self._lines
        size = len(old_digests) * 2
        self._digests = array("Q", [0]) * size
        self._lines = array("I", [0]) * size
        mask = size - 1
        for digest, line in zip(old_digests, old_lines):
            if digest:
                i = digest & mask
                while self._digests[i]:
                    i = (i + 1) & mask
                self._digests[i] = digest
                self._lines[i] = line
