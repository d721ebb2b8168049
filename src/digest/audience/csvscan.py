"""The first pass over a subscriber list's bytes: its encoding, and the faults that stop a read at once.

UTF-8 (with or without a byte-order mark), Windows-1252 (what Excel on Windows writes as 'CSV') and
UTF-16 with a byte-order mark ('Unicode Text') are read; empty, binary and spreadsheet files, files
that mix encodings and files with stray quotes are refused with the line to look at.
"""

from __future__ import annotations

import codecs
import io
import re
from dataclasses import dataclass
from pathlib import Path

from digest.errors import SubscriberError

_CHUNK = 1 << 20
# Bytes Windows-1252 leaves undefined: a file holding them is neither UTF-8 nor Windows-1252.
_CP1252_UNDEFINED = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")
_NON_ASCII_BYTE = re.compile(rb"[\x80-\xff]")


@dataclass
class Encoding:
    """What the byte scan found: the codec to read with, its name for people, a notice, stray quotes."""

    codec: str
    label: str
    notice: str | None = None
    odd_quotes: bool = False  # an odd number of '"': maybe a quoted value that is never closed


def _line_at(data: bytes, pos: int, lines_before: int) -> int:
    return lines_before + data.count(b"\n", 0, pos) + 1


def scan_encoding(path: Path, name: str) -> Encoding:
    """One pass over the raw bytes: pick the encoding; reject empty and binary files; count quotes."""
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        raise SubscriberError(f"{name}: no such file.",
                              "create it (subscribers.example.csv shows the format) or set [paths] subscribers "
                              "in digest.toml") from None
    except IsADirectoryError:
        raise SubscriberError(f"{name} is a folder, not a subscriber list.", "name the CSV file itself") from None
    except OSError as exc:
        raise SubscriberError(f"{name}: cannot read the file ({exc.strerror}).",
                              "check the file's permissions, or copy it somewhere digest can read") from None
    with fh:
        try:
            head = fh.read(4)
            fh.seek(0)
            if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                return _scan_utf16(fh, name)
            return _scan_bytes(fh, name, head)
        except OSError as exc:
            raise SubscriberError(f"{name}: reading failed ({exc.strerror}).", "check the disk or the file") from None


def _not_text(name: str, head: bytes, line: int) -> SubscriberError:
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\xd0\xcf\x11\xe0"):
        return SubscriberError(f"{name} is a spreadsheet workbook, not a CSV text file.",
                               "in the spreadsheet use File → Save As → 'CSV UTF-8 (comma delimited)'")
    return SubscriberError(f"{name}:{line}: not a text file (it contains NUL bytes).",
                           "export the list as CSV (UTF-8) from your spreadsheet or mailing tool")


def unclosed_quote(name: str, line: int) -> SubscriberError:
    """The error for a quoted value that is never closed (it would swallow every later row)."""
    return SubscriberError(f"{name}:{line}: a double-quoted value opened on this line is never closed, so every "
                           "row after it would be swallowed into one value.",
                           'remove the stray " or close the quotes on that line')


class _ByteScan:
    """What one pass over an 8-bit file's chunks finds: NULs, UTF-8 validity, quotes, undefined bytes."""

    def __init__(self, name: str, head: bytes):
        self.name, self.head = name, head
        self.bom = head.startswith(codecs.BOM_UTF8)
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.first_bad_line = self.first_utf8_line = self.first_undefined_line = None
        self.lines_before = self.quotes = 0
        self.has_content = False

    def feed(self, chunk: bytes, position: int) -> None:
        """Look at the next chunk; `position` is the file offset after it."""
        if b"\x00" in chunk:
            raise _not_text(self.name, self.head, _line_at(chunk, chunk.index(b"\x00"), self.lines_before))
        if not self.has_content:
            self.has_content = bool(chunk.strip().removeprefix(codecs.BOM_UTF8).strip())
        self.quotes += chunk.count(b'"')
        if self.first_bad_line is None:
            self._check_utf8(chunk, position)
        if self.first_undefined_line is None and (m := _CP1252_UNDEFINED.search(chunk)):
            self.first_undefined_line = _line_at(chunk, m.start(), self.lines_before)
        self.lines_before += chunk.count(b"\n")

    def _check_utf8(self, chunk: bytes, position: int) -> None:
        pending = len(self.decoder.getstate()[0])
        valid_end = len(chunk)
        try:
            self.decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            valid_end = max(0, exc.start - pending)
            self.first_bad_line = _line_at(chunk, valid_end, self.lines_before)
        # Where the file first holds non-ASCII text that *is* UTF-8: needed to spot mixed files.
        skip_bom = 3 if self.bom and position <= _CHUNK else 0
        if self.first_utf8_line is None and (m := _NON_ASCII_BYTE.search(chunk, skip_bom, valid_end)):
            self.first_utf8_line = _line_at(chunk, m.start(), self.lines_before)

    def finish(self) -> None:
        """After the last chunk: a file that ends inside a UTF-8 sequence is not UTF-8 either."""
        if self.first_bad_line is None:
            try:
                self.decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                self.first_bad_line = self.lines_before + 1


def _scan_bytes(fh: io.BufferedReader, name: str, head: bytes) -> Encoding:
    scan = _ByteScan(name, head)
    while chunk := fh.read(_CHUNK):
        scan.feed(chunk, fh.tell())
    scan.finish()
    if not scan.has_content:
        raise SubscriberError(f"{name} is empty.",
                              "put a header line first (for example: email,first_name,last_name,tags), "
                              "then one subscriber per line")
    odd = bool(scan.quotes % 2)
    bad = scan.first_bad_line
    if bad is None:
        if scan.bom:
            return Encoding("utf-8-sig", "UTF-8 (with byte-order mark)", odd_quotes=odd)
        return Encoding("utf-8", "UTF-8", odd_quotes=odd)
    if scan.bom or (scan.first_utf8_line is not None and scan.first_utf8_line < bad):
        where = "starts with a UTF-8 byte-order mark" if scan.bom else f"is UTF-8 on line {scan.first_utf8_line}"
        raise SubscriberError(f"{name} mixes encodings: it {where} but line {bad} is not UTF-8 "
                              "(probably Windows-1252).",
                              "open it in a spreadsheet, fix the names on those lines, and save it as "
                              "'CSV UTF-8'")
    if scan.first_undefined_line is not None:
        raise SubscriberError(f"{name}:{scan.first_undefined_line}: neither UTF-8 nor Windows-1252 text.",
                              "save the list as 'CSV UTF-8' from your spreadsheet")
    return Encoding("cp1252", "Windows-1252",
                    f"{name} is not UTF-8 (first at line {bad}): read it as Windows-1252. "
                    "Check that accented names look right, or save the file as 'CSV UTF-8'.", odd)


def _scan_utf16(fh: io.BufferedReader, name: str) -> Encoding:
    """UTF-16 with a byte-order mark: what Excel writes as 'Unicode Text'."""
    decoder = codecs.getincrementaldecoder("utf-16")()
    quotes = 0
    has_content = False
    lines_before = 0
    try:
        while chunk := fh.read(_CHUNK):
            text = decoder.decode(chunk)
            if "\x00" in text:
                raise _not_text(name, b"", lines_before + text.count("\n", 0, text.index("\x00")) + 1)
            has_content = has_content or bool(text.strip())
            quotes += text.count('"')
            lines_before += text.count("\n")
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise SubscriberError(f"{name}:{lines_before + 1}: starts like UTF-16 text but is not valid UTF-16.",
                              "save the list as 'CSV UTF-8' from your spreadsheet") from None
    if not has_content:
        raise SubscriberError(f"{name} is empty.", "put a header line first, then one subscriber per line")
    return Encoding("utf-16", "UTF-16", f"{name} is UTF-16 text: read it as such. 'CSV UTF-8' is the usual format.",
                     bool(quotes % 2))
