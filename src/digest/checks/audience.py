"""Checks that need the subscriber list: who it reaches, every reader's merge values, the largest copy."""

from __future__ import annotations

import difflib
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from digest.audience.check import no_valid_rows_hint
from digest.audience.subscribers import ListReport, read_subscribers
from digest.checks.content import shown, where_in_issue
from digest.checks.findings import CheckReport
from digest.checks.markup import SAFE_SCHEMES, check_size
from digest.compose.slots import TEMPLATE_SYNTAX_RE
from digest.delivery.mime import build_mime
from digest.errors import DigestError, MergeError

if TYPE_CHECKING:  # pragma: no cover
    from digest.audience.subscribers import Subscriber
    from digest.compose.issue import Issue
    from digest.config import Settings
    from digest.delivery.personalize import Personalizer

SHOW = 3  # rows named per finding; the count says how many in all
_HREF_SLOT = re.compile(r'href="(%%DIGEST\.([A-Za-z_][A-Za-z0-9_]*)%%)')


@dataclass
class _Tally:
    """Rows that share one problem: how many, and the first few (line, detail)."""

    count: int = 0
    first: list[tuple[int, str]] = field(default_factory=list)

    def add(self, line: int, detail: str) -> None:
        self.count += 1
        if len(self.first) < SHOW:
            self.first.append((line, detail))

    def lines(self, name: str) -> str:
        return "; ".join(f"{name}:{line} {detail}" for line, detail in self.first)


@dataclass
class _Scan:
    """What one pass over the list found."""

    recipients: int = 0
    suppressed: int = 0
    missing: list[tuple[int, str, str]] = field(default_factory=list)  # (line, address, field): first ones
    missing_count: dict[str, int] = field(default_factory=dict)          # field → rows without a value
    unsafe: _Tally = field(default_factory=_Tally)
    largest: int = 0                      # HTML bytes of the largest reader's copy
    largest_reader: "Subscriber | None" = None


def check_list(report: CheckReport, issue: "Issue", settings: "Settings", personalizer: "Personalizer",
               list_path: Path, tags: Sequence[str], suppressed_keys: set[str]) -> ListReport:
    """Read the list as the send will; record who it reaches and every reader's problems."""
    listed = ListReport()
    scan = _Scan()
    url_slots = {name for _marker, name in _HREF_SLOT.findall(personalizer.rendered.html.raw)}
    for sub in read_subscribers(list_path, report=listed, tags=tags or None):
        if sub.key in suppressed_keys:
            scan.suppressed += 1
            continue
        scan.recipients += 1
        _check_reader(scan, personalizer, sub, url_slots)
    name = shown(list_path, settings)
    report.recipients = scan.recipients
    _report_list(report, issue, settings, listed, scan, name, tags)
    if scan.largest_reader is not None:
        try:  # one build: the whole message of the largest reader
            message_bytes = len(build_mime(personalizer.message_for(scan.largest_reader, 0)))
        except DigestError:
            message_bytes = 0  # this reader's message cannot be built: the send reports it for that row
        check_size(report, scan.largest, message_bytes, scan.largest_reader.email)
    return listed


def _check_reader(scan: _Scan, personalizer: "Personalizer", sub: "Subscriber", url_slots: set[str]) -> None:
    try:
        values = personalizer.values_for(sub)
    except MergeError as exc:
        found = re.search(r"merge field '([^']+)'", exc.message)
        name = found.group(1) if found else "?"
        scan.missing_count[name] = scan.missing_count.get(name, 0) + 1
        if len(scan.missing) < 50:
            scan.missing.append((sub.line, sub.email, name))
        return
    for name in personalizer.needed:
        value = values[name]
        if TEMPLATE_SYNTAX_RE.search(value):
            scan.unsafe.add(sub.line, f"({name} = {value[:40]!r} holds template syntax)")
        elif name in url_slots and not value.lower().startswith(SAFE_SCHEMES):
            scan.unsafe.add(sub.line, f"({name} = {value[:40]!r} is used as a link but is not an http(s) address)")
    size = personalizer.rendered.html.filled_bytes(values, _escape)
    if size > scan.largest:
        scan.largest, scan.largest_reader = size, sub


def _escape(value: str) -> str:
    return html.escape(value, quote=True)


def _report_list(report: CheckReport, issue: "Issue", settings: "Settings", listed: ListReport, scan: _Scan,
                 name: str, tags: Sequence[str]) -> None:
    audience_where = where_in_issue(issue, settings, "audience") if issue.audience else ""
    _report_rows(report, listed, name)
    _report_tags(report, listed, name, tags, audience_where)
    if scan.recipients == 0 and listed.valid:
        why = [f"{listed.filtered_out} without the tag{'s' if len(tags) > 1 else ''} {', '.join(tags)}"
               if tags else "", f"{scan.suppressed} suppressed" if scan.suppressed else ""]
        report.add("audience-empty", f"nobody in {name} would receive the issue ("
                   + ", ".join(w for w in why if w) + ").", audience_where or name,
                   "check the issue's audience tags and the suppression list (digest suppress list)")
    _report_values(report, listed, scan, name)


def _report_rows(report: CheckReport, listed: ListReport, name: str) -> None:
    """A list with no usable row (an error), or some invalid rows (a note naming the first ones)."""
    if listed.valid == 0:
        report.add("list-no-valid-rows", f"{name}: not one of its {listed.rows} rows is a usable subscriber"
                   + (f" ({listed.invalid} invalid)" if listed.invalid else " (the file has no rows)") + ".",
                   name, no_valid_rows_hint(listed, name))
    elif listed.invalid:
        first = "; ".join(f"line {p.line}: {p.value!r} — {p.reason}" for p in listed.problems[:SHOW]
                          if p.kind != "duplicate")
        report.add("list-invalid-rows", f"{listed.invalid} row(s) of {name} are invalid and will be skipped "
                   f"(first: {first}).", name, f"fix them, or see every one: digest subscribers check {name}")


def _report_tags(report: CheckReport, listed: ListReport, name: str, tags: Sequence[str], where: str) -> None:
    """Audience tags that no subscriber of the list carries, with the nearest tag that exists."""
    present = {t.casefold() for t in listed.tags}
    for tag in tags:
        if listed.valid and tag.casefold() not in present:
            guess = difflib.get_close_matches(tag, list(listed.tags), n=1, cutoff=0.5)
            report.add("audience-unknown-tag", f"no subscriber in {name} has the tag '{tag}'.", where or name,
                       (f"did you mean '{guess[0]}'? " if guess else "")
                       + f"tags in the list: {', '.join(sorted(listed.tags)) or 'none'}")


def _report_values(report: CheckReport, listed: ListReport, scan: _Scan, name: str) -> None:
    """Readers without a value for a column the issue uses, and values that would break a copy."""
    # A field that is no column at all is reported once, at the issue line (merge-unknown-field).
    count = sum(n for f, n in scan.missing_count.items() if f in listed.columns)
    if count:
        rows = "; ".join([f"{name}:{line} ({email}: no {f})" for line, email, f in scan.missing
                          if f in listed.columns][:SHOW])
        report.add("merge-missing-value", f"{count} reader(s) have no value for a merge field without a "
                   f"default: {rows}.", name,
                   "fill the column, write {{ field | default(\"…\") }} in the issue, or add [merge] defaults")
    if scan.unsafe.count:
        report.add("merge-unsafe-value", f"{scan.unsafe.count} reader(s) have values that would break their "
                   f"copy: {scan.unsafe.lines(name)}.", name, "correct those cells in the list")
