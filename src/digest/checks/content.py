"""Checks on the issue's own content: merge syntax and fields, pointing at the issue file's lines."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from digest.checks.findings import CheckReport
from digest.compose.slots import (
    CONTENT_FIELD_RE,
    SLOT_RE,
    split_slot,
    template_syntax_left,
)
from digest.text import field_key

if TYPE_CHECKING:  # pragma: no cover
    from digest.compose.issue import Issue
    from digest.compose.render import Rendered
    from digest.config import Settings

COMPUTED = frozenset({"email", "unsubscribe_url", "web_version_url"})  # filled by digest for every reader
SYNTAX_HINT = ('merge fields are {{ field }} or {{ field | default("text") }}; conditions, filters and other '
               "template code belong in the templates")


def shown(path: Path, settings: "Settings") -> str:
    """A path as findings name it: relative to the project when it is inside it."""
    try:
        return str(Path(path).resolve().relative_to(settings.root.resolve()))
    except ValueError:
        return str(path)


def issue_texts(issue: "Issue") -> list[tuple[str, str]]:
    """(field as the issue file names it, text) for every text a reader sees."""
    texts = [("subject", issue.subject), ("preheader", issue.preheader), ("title", issue.title),
             ("kicker", issue.kicker or ""), ("intro", issue.intro), ("outro", issue.outro)]
    images = [("header_image", issue.header_image)]
    for i, section in enumerate(issue.sections):
        texts += [(f"sections[{i}].title", section.title), (f"sections[{i}].body", section.body)]
        if section.cta is not None:
            texts += [(f"sections[{i}].cta.label", section.cta.label), (f"sections[{i}].cta.url", section.cta.url)]
        images.append((f"sections[{i}].image", section.image))
    for key, image in images:
        if image is not None:
            texts += [(f"{key}.alt", image.alt), (f"{key}.src", image.src), (f"{key}.href", image.href or "")]
    return [(key, text) for key, text in texts if text]


def where_in_issue(issue: "Issue", settings: "Settings", key: str, text: str = "", offset: int = 0) -> str:
    """'issues/x.yaml:12' for a position inside a field: the file line holding it, at or below the key's."""
    line = issue.line_of(key)
    needle = text[offset:offset + 40].split("\n", 1)[0].strip() if text else ""
    if needle:
        try:
            lines = issue.path.read_text(encoding="utf-8").splitlines()
        except OSError:
            lines = []
        for number in range(line, min(len(lines), line + 2000) + 1):
            if needle in lines[number - 1]:
                line = number
                break
    return f"{shown(issue.path, settings)}:{line}"


def check_merge_syntax(report: CheckReport, issue: "Issue", rendered: "Rendered", settings: "Settings") -> None:
    """Template syntax in the issue that digest does not fill, and any left in the rendered message."""
    found_in_issue = False
    for key, text in issue_texts(issue):
        for offset, excerpt in template_syntax_left(text):
            found_in_issue = True
            report.add("merge-syntax", f"'{excerpt}' in {key} is not merge syntax digest fills: readers would "
                       "see it as written.", where_in_issue(issue, settings, key, text, offset), SYNTAX_HINT)
    if found_in_issue:
        return  # the same text shows up in the rendered parts: one finding is enough
    for part, slot_text in (("subject", rendered.subject), ("preheader", rendered.preheader),
                            ("HTML part", rendered.html), ("text part", rendered.text)):
        raw = SLOT_RE.sub("", slot_text.raw)
        for _offset, excerpt in template_syntax_left(raw)[:3]:
            report.add("merge-syntax", f"'{excerpt}' is left in the {part}: readers would see it as written.",
                       find_in_templates(settings, excerpt[:12]), "it comes from a template: fix it there")


def find_in_templates(settings: "Settings", needle: str) -> str:
    """'templates/x.mjml.j2:7' of the first template line holding `needle` ('' when none does)."""
    folder = settings.path("templates")
    if not needle or not folder.is_dir():
        return ""
    for path in sorted(folder.rglob("*.j2")):
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if needle in line:
                return f"{shown(path, settings)}:{number}"
    return ""


def field_locations(issue: "Issue", settings: "Settings") -> dict[str, str]:
    """Where each merge field is first written in the issue file (field → 'file:line')."""
    where: dict[str, str] = {}
    for key, text in issue_texts(issue):
        for m in CONTENT_FIELD_RE.finditer(text):
            where.setdefault(field_key(m.group("name")), where_in_issue(issue, settings, key, text, m.start()))
    return where


def check_fields(report: CheckReport, issue: "Issue", rendered: "Rendered", settings: "Settings",
                 columns: Iterable[str]) -> None:
    """Every merge field must come from a list column (matched as columns are), or have a default."""
    columns = set(columns)
    defaults = {field_key(k) for k in settings.merge.defaults}
    known = sorted(columns | COMPUTED | defaults)
    locations = field_locations(issue, settings)
    seen: set[str] = set()
    for name in sorted(rendered.fields):
        field, inline = split_slot(name)
        if field in seen or field in COMPUTED or field in columns:
            continue
        seen.add(field)
        where = locations.get(field) or find_in_templates(settings, f"subscriber.{field}")
        if inline is not None or field in defaults:
            default = inline if inline is not None else settings.merge.defaults.get(field, "")
            report.add("merge-default-only", f"no column of the list is called '{field}': every reader gets "
                       f"the default {default!r}.", where, _did_you_mean(field, known) or
                       f"add a '{field}' column to the list, or write the text itself instead of the field")
            continue
        report.add("merge-unknown-field", f"no column of the list provides the merge field '{field}', and it has "
                   "no default.", where,
                   _did_you_mean(field, known) or f"add a '{field}' column, or write {{{{ {field} | default(\"…\") }}}}")


def _did_you_mean(field: str, known: list[str]) -> str:
    guess = difflib.get_close_matches(field, known, n=1, cutoff=0.6)
    return f"did you mean {{{{ {guess[0]} }}}}? (columns and built-ins: {', '.join(known)})" if guess else ""
