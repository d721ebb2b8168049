"""Stream a subscriber CSV into validated, de-duplicated Subscriber objects, one row at a time.

The list is read as a stream (a million rows never sit in memory): one pass over the raw bytes
decides the encoding and catches file-level faults before any row is handed out, then a second
pass parses rows with the csv module. Bad rows are counted and reported, never fatal (unless
`strict`); file-level faults (missing, empty, binary, no `email` column) raise SubscriberError.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import functools
import re
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from email_validator import EmailNotValidError, validate_email

from digest.audience.addresses import address_key
from digest.errors import SubscriberError

MAX_PROBLEMS = 1000  # problems kept in memory per report; every one is still counted
TAG_SEPARATORS = re.compile(r"[;|,]")  # inside the tags cell: "members; climate" or "members|dei"
EMAIL_COLUMNS = ("email", "e_mail", "email_address", "e_mail_address")  # Mailchimp exports "Email Address"
DELIMITERS = (",", ";", "\t")
_CHUNK = 1 << 20
_MAX_VALUE_SHOWN = 120  # a problem keeps at most this much of the offending value
# Bytes Windows-1252 leaves undefined: a file holding them is neither UTF-8 nor Windows-1252.
_CP1252_UNDEFINED = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")
_NON_ASCII_BYTE = re.compile(rb"[\x80-\xff]")
_HEADER_SPACING = re.compile(r"[\s\-]+")
_SEP_LINE = re.compile(r"^sep=(.)\s*$")  # Excel's "sep=;" first line
_CSV_EOF_IN_QUOTES = "unexpected end of data"  # csv's message (strict mode) when a file ends inside quotes


@dataclass(frozen=True)
class Subscriber:
    """One recipient: a valid, normalised address plus every column of its row as merge fields."""

    email: str  # email-validator's normalised form (domain lower-cased, IDN as Unicode)
    name: str  # the 'name' column, else first_name + last_name; whitespace collapsed; '' when none
    fields: Mapping[str, str] = field(hash=False)  # every column by normalised header name
    tags: frozenset[str] = frozenset()  # case-folded
    line: int = 0  # physical line in the file where the row starts (1-based)
    # Identity of the person (case-insensitive, IDN-insensitive): digest.audience.addresses.address_key(email).
    # Computed once here (or passed in by whoever already has it) — a list of 200,000 needs it for
    # every row, in dedupe, suppression and the ledger.
    key: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", address_key(self.email))


@dataclass(frozen=True)
class Problem:
    """One skipped row: where it starts, the address cell as written, and why it was skipped."""

    line: int
    value: str
    reason: str
    kind: str = "invalid"  # "invalid" or "duplicate"

    def format(self, filename: str) -> str:
        """'subscribers.csv:14: 'bob@' — reason' — the form the CLI prints."""
        return f"{filename}:{self.line}: {self.value!r} — {self.reason}"


@dataclass
class ListReport:
    """Counts and problems gathered while a list is read; final once the iterator is exhausted."""

    path: Path | None = None
    encoding: str = "utf-8"  # the Python codec used to read the file
    encoding_label: str = "UTF-8"  # the same, for people
    delimiter: str = ","
    rows: int = 0  # data rows seen (blank rows not included)
    valid: int = 0  # distinct valid subscribers (before any tag filter)
    invalid: int = 0
    duplicates: int = 0
    blank: int = 0  # rows with no value in any cell: skipped silently
    filtered_out: int = 0  # valid subscribers left out by the tag filter
    tags: Counter = field(default_factory=Counter)  # tag → valid subscribers carrying it
    problems: list[Problem] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # file-level remarks (encoding, sep= line)
    max_problems: int = MAX_PROBLEMS

    @property
    def skipped(self) -> int:
        """Rows not turned into a subscriber because they were invalid or duplicates."""
        return self.invalid + self.duplicates

    @property
    def problems_not_kept(self) -> int:
        """Problems counted but not kept in `problems` (beyond max_problems)."""
        return self.skipped - len(self.problems)

    @property
    def is_utf8(self) -> bool:
        """True when the file was UTF-8 (with or without a byte-order mark)."""
        return self.encoding in ("utf-8", "utf-8-sig")

    def add_problem(self, problem: Problem) -> None:
        """Count a skipped row; keep its details while fewer than max_problems are kept."""
        if problem.kind == "duplicate":
            self.duplicates += 1
        else:
            self.invalid += 1
        if len(self.problems) < self.max_problems:
            self.problems.append(problem)


@functools.lru_cache(maxsize=1024)  # lists repeat the same few tag cells on every row
def parse_tags(text: str) -> frozenset[str]:
    """Split a tags cell on ';', '|' or ',' into case-folded tags ('Members; Climate' → members, climate)."""
    return frozenset(t for t in (p.strip().casefold() for p in TAG_SEPARATORS.split(text)) if t)


def _tag_set(tags: str | Iterable[str] | None) -> frozenset[str]:
    if tags is None:
        return frozenset()
    if isinstance(tags, str):
        return parse_tags(tags)
    return frozenset(t for tag in tags for t in parse_tags(tag))


def in_audience(subscriber: Subscriber, tags: str | Iterable[str] | None) -> bool:
    """True when the subscriber has any of `tags` (case-insensitive); no tags means everyone."""
    wanted = _tag_set(tags)
    return not wanted or not wanted.isdisjoint(subscriber.tags)


def filter_audience(subscribers: Iterable[Subscriber], tags: str | Iterable[str] | None) -> Iterator[Subscriber]:
    """Keep only subscribers having any of `tags` (case-insensitive); no tags keeps everyone."""
    wanted = _tag_set(tags)
    for sub in subscribers:
        if not wanted or not wanted.isdisjoint(sub.tags):
            yield sub


# RFC 5322 dot-atom local part (email-validator's DOT_ATOM_TEXT), then a domain to check once.
_ATEXT = r"A-Za-z0-9_!#$%&'*+\-/=?^`{|}~"
_PLAIN_ADDRESS = re.compile(rf"([{_ATEXT}]+(?:\.[{_ATEXT}]+)*)@([^@\s]+)\Z")
# RFC 2142 names email-validator lower-cases (its CASE_INSENSITIVE_MAILBOX_NAMES): left to it.
_ROLE_MAILBOXES = frozenset({"info", "marketing", "sales", "support", "abuse", "noc", "security", "postmaster",
                             "hostmaster", "usenet", "news", "webmaster", "www", "uucp", "ftp"})


def normalise_address(text: str) -> str:
    """email-validator's normalised form of `text` (no DNS); raises EmailNotValidError when invalid.

    Same answer as validate_email(text, check_deliverability=False).normalized. Most of its cost is
    checking the domain (~60% of ~70 µs), and a list has few distinct domains: so for a plain ASCII
    local part the domain's verdict is remembered, and everything else (Unicode or quoted local parts,
    role names, any domain not yet known valid, every error) goes through validate_email itself.
    """
    m = _PLAIN_ADDRESS.match(text)
    if m and m.group(1).lower() not in _ROLE_MAILBOXES and (domain := _valid_domain(m.group(2))):
        unicode_domain, ascii_domain = domain
        local = m.group(1)
        normalised = f"{local}@{unicode_domain}"
        # validate_email_length: original, normalised and ASCII forms, each at most 254 octets
        if max(len(text.encode()), len(normalised.encode()), len(local) + 1 + len(ascii_domain)) <= 254:
            return normalised
    return validate_email(text, check_deliverability=False).normalized


@functools.lru_cache(maxsize=4096)
def _valid_domain(domain: str) -> tuple[str, str] | None:
    """(normalised, ASCII) forms of a domain email-validator accepts; None when it does not."""
    try:
        checked = validate_email(f"a@{domain}", check_deliverability=False)
    except EmailNotValidError:
        return None
    return checked.domain, checked.ascii_domain


class _SeenAddresses:
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


@dataclass
class _Encoding:
    codec: str
    label: str
    notice: str | None = None
    odd_quotes: bool = False  # an odd number of '"': maybe a quoted value that is never closed


def _line_at(data: bytes, pos: int, lines_before: int) -> int:
    return lines_before + data.count(b"\n", 0, pos) + 1


def _scan(path: Path, name: str) -> _Encoding:
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


def _unclosed_quote(name: str, line: int) -> SubscriberError:
    return SubscriberError(f"{name}:{line}: a double-quoted value opened on this line is never closed, so every "
                           "row after it would be swallowed into one value.",
                           'remove the stray " or close the quotes on that line')


def _scan_bytes(fh: io.BufferedReader, name: str, head: bytes) -> _Encoding:
    bom = head.startswith(codecs.BOM_UTF8)
    decoder = codecs.getincrementaldecoder("utf-8")()
    first_bad_line = first_utf8_line = first_undefined_line = None
    lines_before = quotes = 0
    has_content = False
    while chunk := fh.read(_CHUNK):
        if b"\x00" in chunk:
            raise _not_text(name, head, _line_at(chunk, chunk.index(b"\x00"), lines_before))
        if not has_content:
            has_content = bool(chunk.strip().removeprefix(codecs.BOM_UTF8).strip())
        quotes += chunk.count(b'"')
        if first_bad_line is None:
            pending = len(decoder.getstate()[0])
            valid_end = len(chunk)
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                valid_end = max(0, exc.start - pending)
                first_bad_line = _line_at(chunk, valid_end, lines_before)
            # Where the file first holds non-ASCII text that *is* UTF-8: needed to spot mixed files.
            skip_bom = 3 if bom and fh.tell() <= _CHUNK else 0
            if first_utf8_line is None and (m := _NON_ASCII_BYTE.search(chunk, skip_bom, valid_end)):
                first_utf8_line = _line_at(chunk, m.start(), lines_before)
        if first_undefined_line is None and (m := _CP1252_UNDEFINED.search(chunk)):
            first_undefined_line = _line_at(chunk, m.start(), lines_before)
        lines_before += chunk.count(b"\n")
    if first_bad_line is None:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            first_bad_line = lines_before + 1
    if not has_content:
        raise SubscriberError(f"{name} is empty.",
                              "put a header line first (for example: email,first_name,last_name,tags), "
                              "then one subscriber per line")
    odd = bool(quotes % 2)
    if first_bad_line is None:
        if bom:
            return _Encoding("utf-8-sig", "UTF-8 (with byte-order mark)", odd_quotes=odd)
        return _Encoding("utf-8", "UTF-8", odd_quotes=odd)
    if bom or (first_utf8_line is not None and first_utf8_line < first_bad_line):
        where = "starts with a UTF-8 byte-order mark" if bom else f"is UTF-8 on line {first_utf8_line}"
        raise SubscriberError(f"{name} mixes encodings: it {where} but line {first_bad_line} is not UTF-8 "
                              "(probably Windows-1252).",
                              "open it in a spreadsheet, fix the names on those lines, and save it as "
                              "'CSV UTF-8'")
    if first_undefined_line is not None:
        raise SubscriberError(f"{name}:{first_undefined_line}: neither UTF-8 nor Windows-1252 text.",
                              "save the list as 'CSV UTF-8' from your spreadsheet")
    return _Encoding("cp1252", "Windows-1252",
                     f"{name} is not UTF-8 (first at line {first_bad_line}): read it as Windows-1252. "
                     "Check that accented names look right, or save the file as 'CSV UTF-8'.", odd)


def _scan_utf16(fh: io.BufferedReader, name: str) -> _Encoding:
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
    return _Encoding("utf-16", "UTF-16", f"{name} is UTF-16 text: read it as such. 'CSV UTF-8' is the usual format.",
                     bool(quotes % 2))


def normalise_header(cell: str) -> str:
    """'First Name' → 'first_name': lower-case, trimmed, spaces and hyphens as underscores."""
    return _HEADER_SPACING.sub("_", cell.strip().lower()).strip("_")


def _sniff_delimiter(line: str) -> str:
    """The delimiter used most often outside double quotes on the header line (',' when none)."""
    counts = Counter()
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in DELIMITERS:
            counts[ch] += 1
    return max(DELIMITERS, key=lambda d: counts[d]) if counts else ","


def read_subscribers(
    path: str | Path,
    *,
    strict: bool = False,
    report: ListReport | None = None,
    tags: str | Iterable[str] | None = None,
) -> Iterator[Subscriber]:
    """Stream valid, de-duplicated subscribers from a CSV list; bad rows are recorded in `report`.

    File-level faults raise SubscriberError at once, before anything is yielded (one exception: a
    never-closed quote that a second stray quote hides from the first pass fails at the end). A bad row is
    skipped and recorded; with `strict=True` it raises SubscriberError naming file:line instead.
    Duplicates (same address_key) keep the first row. `tags`, when given, keeps only subscribers
    having any of them (case-insensitive).
    """
    path = Path(path)
    report = report if report is not None else ListReport()
    rows = _ListReader(path, str(path), strict, report).subscribers(_tag_set(tags))
    next(rows)  # run the file-level checks now, so a bad file fails here and not at the first row
    return rows


class _ListReader:
    """One read of one list. The per-row work sits in short methods: besides being easier to read,
    that keeps tracemalloc usable on big lists (in Python 3.11 it pays for every allocation in
    proportion to the size of the function making it)."""

    def __init__(self, path: Path, name: str, strict: bool, report: ListReport):
        self.path, self.name, self.strict, self.report = path, name, strict, report
        self.seen = _SeenAddresses()

    def subscribers(self, wanted: frozenset[str]) -> Iterator:
        """First yield None once the file-level checks pass, then every subscriber to hand out."""
        report = self.report
        with self._open() as fh:
            yield None
            for start, cells in self._records(fh):
                sub = self._subscriber(start, cells)
                if sub is None:
                    continue
                if wanted and wanted.isdisjoint(sub.tags):
                    report.filtered_out += 1
                    continue
                yield sub

    def _open(self) -> io.TextIOWrapper:
        """Scan the bytes, open the text, read the header line; set up the csv reader."""
        enc = _scan(self.path, self.name)
        report = self.report
        report.path, report.encoding, report.encoding_label = self.path, enc.codec, enc.label
        if enc.notice:
            report.notices.append(enc.notice)
        fh = open(self.path, encoding=enc.codec, newline="")
        try:
            self._read_header(fh)
            if enc.odd_quotes:
                self._check_quotes(enc.codec)
        except BaseException:
            fh.close()
            raise
        return fh

    def _check_quotes(self, codec: str) -> None:
        """A file with an odd number of '"' gets a parse-only pass first: a quoted value that runs to the
        end of the file would swallow every row after it, so it must fail before any row is handed
        out. (A lone '"' inside an unquoted value, as in 5" screen, is fine and passes.)"""
        with open(self.path, encoding=codec, newline="") as fh:
            reader = csv.reader(fh, delimiter=self.delimiter, skipinitialspace=True, strict=True)
            while True:
                start = reader.line_num + 1
                try:
                    next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    if str(exc) == _CSV_EOF_IN_QUOTES:
                        raise _unclosed_quote(self.name, start) from None

    def _read_header(self, fh: io.TextIOWrapper) -> None:
        name = self.name
        lines = iter(fh)
        offset = 0  # physical lines before the header line
        header_line = ""
        for header_line in lines:
            if header_line.strip():
                break
            offset += 1
        delimiter = None
        if m := _SEP_LINE.match(header_line):
            delimiter = m.group(1)
            self.report.notices.append(f"{name}:{offset + 1}: 'sep={delimiter}' line read as the delimiter")
            offset += 1
            header_line = next(lines, "")
        self.delimiter = self.report.delimiter = delimiter or _sniff_delimiter(header_line)
        self.reader = csv.reader(itertools.chain([header_line], lines), delimiter=self.delimiter,
                                 skipinitialspace=True, strict=True)
        try:
            header = next(self.reader, [])
        except csv.Error as exc:
            raise SubscriberError(f"{name}:{offset + 1}: the header line cannot be parsed ({exc}).",
                                  "make the first line a plain list of column names") from None
        self.offset = offset
        self.columns = _check_header(header, name, offset + 1)
        self.width = len(self.columns)
        self.email_at = self.columns.index("email")
        self.has_name_column = "name" in self.columns
        self.tags_at = self.columns.index("tags") if "tags" in self.columns else None

    def _records(self, fh: io.TextIOWrapper) -> Iterator[tuple[int, list[str]]]:
        """(line where the row starts, cells) for each non-blank row; unparsable rows become problems."""
        reader, offset, report = self.reader, self.offset, self.report
        while True:
            start = offset + reader.line_num + 1  # quoted newlines make this differ from the row count
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                if str(exc) == _CSV_EOF_IN_QUOTES:  # only when _check_quotes did not run: rare
                    raise _unclosed_quote(self.name, start) from None
                report.rows += 1
                end = offset + reader.line_num
                span = f"line {start}" if end <= start else (f"lines {start}–{end}: is a double quote on line "
                                                             f"{start} not closed?")
                self._bad(start, "", f"the row cannot be parsed as CSV ({exc}; {span})")
                continue
            if any(cells) and any(c.strip() for c in cells):
                report.rows += 1
                yield start, cells
            else:
                report.blank += 1

    def _subscriber(self, start: int, cells: list[str]) -> Subscriber | None:
        """The row as a Subscriber, or None after recording why it is skipped."""
        width = self.width
        raw_email = cells[self.email_at].strip() if self.email_at < len(cells) else ""
        if len(cells) > width and any(c.strip() for c in cells[width:]):
            return self._bad(start, raw_email, f"the row has {len(cells)} values but the header has {width} "
                                               f"columns; a value containing '{self.delimiter}' must be in double quotes")
        if not raw_email:
            return self._bad(start, raw_email, "no email address")
        try:
            email = normalise_address(raw_email)
        except EmailNotValidError as exc:
            return self._bad(start, raw_email, str(exc))
        key = address_key(email)
        first = self.seen.first_line(key, start)
        if first is not None:
            return self._bad(start, raw_email, f"duplicate of line {first}", "duplicate")
        return self._build(start, email, key, cells)

    def _build(self, start: int, email: str, key: str, cells: list[str]) -> Subscriber:
        """A Subscriber from a row whose address passed every check."""
        width = self.width
        if len(cells) < width:
            cells += [""] * (width - len(cells))  # spreadsheets drop trailing empty cells
        values = {c: v.strip() for c, v in zip(self.columns, cells) if c}
        values["email"] = email
        display = values["name"] if self.has_name_column else ""
        if not display:
            display = f"{values.get('first_name', '')} {values.get('last_name', '')}".strip()
        display = " ".join(display.split())  # it goes into the To: header: no line breaks
        values["name"] = display
        tags = parse_tags(cells[self.tags_at]) if self.tags_at is not None else frozenset()
        self.report.valid += 1
        self.report.tags.update(tags)
        return Subscriber(email=email, name=display, fields=MappingProxyType(values), tags=tags, line=start,
                          key=key)

    def _bad(self, line: int, value: str, reason: str, kind: str = "invalid") -> None:
        """Record a skipped row (or, when strict, raise on an invalid one)."""
        value = value if len(value) <= _MAX_VALUE_SHOWN else value[:_MAX_VALUE_SHOWN] + "…"
        problem = Problem(line, value, reason, kind)
        self.report.add_problem(problem)
        if self.strict and kind == "invalid":
            raise SubscriberError(problem.format(self.name),
                                  "fix or remove that row (digest subscribers check lists every problem), "
                                  "or read the list without strict to skip bad rows")


def _check_header(header: list[str], name: str, line: int) -> list[str]:
    """Normalised column names ('' for a nameless column, which is ignored); the email column named 'email'."""
    columns = [normalise_header(c) for c in header]
    email_cols = [i for i, c in enumerate(columns) if c in EMAIL_COLUMNS]
    if not email_cols:
        found = ", ".join(repr(c.strip()) for c in header if c.strip()) or "nothing"
        if any("@" in c for c in header):
            raise SubscriberError(f"{name}:{line}: the first line holds an address, not column names "
                                  f"(found {found}).",
                                  "add a header line such as 'email,first_name,last_name,tags' above the first row")
        raise SubscriberError(f"{name}:{line}: no 'email' column (found {found}).",
                              "name the column of addresses 'email' in the header line")
    if len(email_cols) > 1:
        raise SubscriberError(f"{name}:{line}: more than one email column "
                              f"({', '.join(repr(header[i].strip()) for i in email_cols)}).",
                              "keep one column of addresses, or rename the others")
    columns[email_cols[0]] = "email"
    repeated = sorted({c for c in columns if c and columns.count(c) > 1})
    if repeated:
        raise SubscriberError(f"{name}:{line}: column {', '.join(repr(c) for c in repeated)} appears twice.",
                              "give every column its own name")
    return columns
