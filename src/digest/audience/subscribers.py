"""Stream a subscriber CSV into validated, de-duplicated Subscriber objects, one row at a time.

The list is read as a stream (a million rows never sit in memory): one pass over the raw bytes
(audience/csvscan.py) decides the encoding and catches file-level faults before any row is handed out, then a second
pass parses rows with the csv module. Bad rows are counted and reported, never fatal (unless
`strict`); file-level faults (missing, empty, binary, no `email` column) raise SubscriberError.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from email_validator import EmailNotValidError

from digest.addresses import address_key, normalise_address
from digest.audience.csvscan import scan_encoding, unclosed_quote
from digest.audience.dedupe import SeenAddresses
from digest.errors import SubscriberError
from digest.text import field_key

MAX_PROBLEMS = 1000  # problems kept in memory per report; every one is still counted
TAG_SEPARATORS = re.compile(r"[;|,]")  # inside the tags cell: "members; climate" or "members|dei"
EMAIL_COLUMNS = ("email", "e_mail", "email_address", "e_mail_address")  # Mailchimp exports "Email Address"
DELIMITERS = (",", ";", "\t")
_MAX_VALUE_SHOWN = 120  # a problem keeps at most this much of the offending value
MAX_COLUMNS = 16_384  # what a spreadsheet holds (Excel, LibreOffice): a wider header is not a list
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
    # Identity of the person (case-insensitive, IDN-insensitive): digest.addresses.address_key(email).
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
    columns: tuple[str, ...] = ()  # the header's column names, normalised (text.field_key)
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
def normalise_header(cell: str) -> str:
    """'First Name' → 'first_name': lower-case, trimmed, spaces and hyphens as underscores (text.field_key)."""
    return field_key(cell)


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
        self.seen = SeenAddresses()

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
        enc = scan_encoding(self.path, self.name)
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
                        raise unclosed_quote(self.name, start) from None

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
        self.report.columns = tuple(self.columns)
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
                    raise unclosed_quote(self.name, start) from None
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
    if len(header) > MAX_COLUMNS:
        raise SubscriberError(f"{name}:{line}: the header has {len(header):,} columns; at most {MAX_COLUMNS:,}.",
                              "is this the subscriber list? Save it from the spreadsheet as CSV, one row per reader")
    columns = [normalise_header(c) for c in header]
    columns[_email_column(header, columns, name, line)] = "email"
    repeated = sorted(c for c, n in Counter(columns).items() if c and n > 1)  # one pass
    if len(repeated) == 1:
        raise SubscriberError(f"{name}:{line}: column {repeated[0]!r} appears twice.", "give every column its own name")
    if repeated:
        raise SubscriberError(f"{name}:{line}: columns {_some(repr(c) for c in repeated)} appear more than once.",
                              "give every column its own name")
    return columns


def _email_column(header: list[str], columns: list[str], name: str, line: int) -> int:
    """Where the addresses are: the one column named email (or e-mail, Email Address …)."""
    email_cols = [i for i, c in enumerate(columns) if c in EMAIL_COLUMNS]
    if not email_cols:
        found = _some(repr(c.strip()) for c in header if c.strip()) or "nothing"
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
    return email_cols[0]


def _some(items: Iterable[str], shown: int = 5) -> str:
    """'a', 'b', 'c', 'd', 'e' and 12 more: a list an error message can hold."""
    items = list(items)
    more = f" and {len(items) - shown:,} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more
