"""Merge slots: per-recipient values that survive the once-per-issue render and are filled cheaply.

A slot is written into the rendered output as `%%DIGEST.<field>%%` — plain ASCII letters, digits,
dots, underscores and percent signs, which Jinja, MJML, premailer (even inside href attributes) and
Markdown all leave alone. Filling is a list join, never a re-render.

In the HTML, a slot inside a URL attribute (href, src) is filled as a URL: found once, when the
final HTML is split (SlotText(html, urls=True)), so the markup keeps the one slot spelling. A slot
that begins the URL must hold an http(s) or mailto URL; one inside a URL is percent-encoded.
"""

from __future__ import annotations

import re
from typing import Callable, Mapping
from urllib.parse import quote

from digest.text import field_key

SLOT_RE = re.compile(r"%%DIGEST\.([A-Za-z_][A-Za-z0-9_]*)%%")
_URL_ATTR_RE = re.compile(r"""(\b(?:href|src)\s*=\s*)(["'])(.*?)\2""", re.I | re.S)
_WEB_LINK = re.compile(r"(?:https?://|mailto:)", re.I)
_URL_RESERVED = ";/?:@&=+$,#%[]!*'()~"  # kept as they are in a value that is a whole URL
# How an issue's author writes a merge field in the issue file's text: {{ first_name }}, also
# {{ First Name }}, {{ subscriber.first_name }} and {{ first_name | default("there") }}. Anything
# else between {{ }} (filters, expressions, {% %} tags) is not merge syntax: the checks report it.
CONTENT_FIELD_RE = re.compile(
    r"\{\{\s*(?:subscriber\.)?(?P<name>[A-Za-z_][A-Za-z0-9_ \-]*?)\s*"
    r"(?:\|\s*default\(\s*(?:\"(?P<dq>[^\"{}]*)\"|'(?P<sq>[^'{}]*)')\s*\)\s*)?\}\}")
# Left in the text after the supported fields were turned into slots: template syntax digest does
# not fill. It would reach readers literally.
TEMPLATE_SYNTAX_RE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}|\{\{|\}\}|\{%|%\}|\{#|#\}", re.S)
DEFAULT_MARK = "__or_"  # a slot with an inline default: <field>__or_<hex of the default's UTF-8>
# Markdown link destinations get percent-encoded: %%DIGEST.x%% becomes %25%25DIGEST.x%25%25.
ENCODED_SLOT_RE = re.compile(r"%25%25DIGEST\.([A-Za-z_][A-Za-z0-9_]*)%25%25")


def slot(field: str) -> str:
    """The marker for one merge field."""
    return f"%%DIGEST.{field}%%"


def slot_for(name: str, default: str | None = None) -> str:
    """The slot for a field written in issue content (or a template), with its inline default if any."""
    key = field_key(name)
    if default is None:
        return slot(key)
    return slot(f"{key}{DEFAULT_MARK}{default.encode('utf-8').hex()}")


def split_slot(name: str) -> tuple[str, str | None]:
    """(field, inline default) of a slot name."""
    field, mark, hexed = name.partition(DEFAULT_MARK)
    if not mark:
        return name, None
    try:
        return field, bytes.fromhex(hexed).decode("utf-8")
    except ValueError:  # not one of ours: a column that happens to contain the mark
        return name, None


def _content_slot(m: re.Match) -> str:
    default = m.group("dq") if m.group("dq") is not None else m.group("sq")
    return slot_for(m.group("name"), default)


def content_to_slots(text: str) -> str:
    """Turn the merge fields written in issue content (`{{ field }}`, with an optional default) into slots."""
    return CONTENT_FIELD_RE.sub(_content_slot, text)


def template_syntax_left(text: str) -> list[tuple[int, str]]:
    """(offset, excerpt) of every bit of template syntax the merge fields do not cover."""
    rest = CONTENT_FIELD_RE.sub(lambda m: " " * len(m.group(0)), text)
    found = []
    for m in TEMPLATE_SYNTAX_RE.finditer(rest):
        excerpt = text[m.start():m.end()] if m.end() - m.start() > 2 else text[m.start():m.start() + 30]
        found.append((m.start(), " ".join(excerpt.split())[:60]))
    return found


class UnsafeLink(ValueError):
    """A merge value that begins a link is not an http(s) or mailto URL (javascript:, data:, …)."""

    def __init__(self, field: str, value: str):
        super().__init__(f"{field} = {value!r}")
        self.field, self.value = field, value


def url_places(html: str) -> list[str | None]:
    """For each slot of `html`, in order: 'link' when it begins an href/src value, 'part' inside one, else None."""
    spans = []  # (start of the value's first non-space character, end of the value)
    for m in _URL_ATTR_RE.finditer(html):
        value = m.group(3)
        spans.append((m.start(3) + len(value) - len(value.lstrip()), m.end(3)))
    places: list[str | None] = []
    i = 0
    for s in SLOT_RE.finditer(html):
        while i < len(spans) and spans[i][1] <= s.start():
            i += 1
        inside = i < len(spans) and spans[i][0] <= s.start() < spans[i][1]
        places.append(("link" if s.start() == spans[i][0] else "part") if inside else None)
    return places


def url_value(value: str, kind: str | None, field: str) -> str:
    """A merge value as its place in a URL needs it: `part` percent-encoded, `link` checked and encoded."""
    if kind == "part":
        return quote(value, safe="@")  # data, never structure: '&', '=', '#', '/', a newline all encoded
    if kind == "link":
        link = value.strip()
        if link and not _WEB_LINK.match(link):
            raise UnsafeLink(field, value)
        return quote(link, safe=_URL_RESERVED)  # the URL as given; spaces, quotes, <> and newlines encoded
    return value


def repair_encoded_slots(html: str) -> str:
    """Undo percent-encoding of slot markers inside link destinations."""
    return ENCODED_SLOT_RE.sub(lambda m: slot(m.group(1)), html)


class SlotText:
    """Text with merge slots, split once so that each fill is a single join."""

    __slots__ = ("raw", "_parts", "_names", "_slots", "fields", "link_fields", "_literal_bytes", "_counts")

    def __init__(self, raw: str, *, urls: bool = False):
        self.raw = raw
        pieces = SLOT_RE.split(raw)
        self._parts = pieces[0::2]   # literal text around the slots
        self._names = pieces[1::2]   # field name of each slot, in order
        places = url_places(raw) if urls else [None] * len(self._names)
        self._slots = list(zip(self._names, places))  # (field, None | 'link' | 'part')
        self.fields = frozenset(self._names)
        self.link_fields = frozenset(name for name, kind in self._slots if kind == "link")
        self._literal_bytes: int | None = None  # filled_bytes() computes these on first use
        self._counts: dict[tuple, int] = {}

    def _filled(self, values: Mapping[str, str], escape: Callable[[str], str] | None, *,
                strict: bool = True) -> dict[tuple, str]:
        """Each distinct (field, place) once: its value as that place needs it, then escaped.

        `strict=False` (sizing only) keeps a link value it would refuse as it is instead of raising."""
        vals = {}
        for name, kind in set(self._slots):
            try:
                value = url_value(values[name], kind, name) if kind else values[name]
            except UnsafeLink:
                if strict:
                    raise
                value = values[name]
            vals[name, kind] = escape(value) if escape else value
        return vals

    def fill(self, values: Mapping[str, str], escape: Callable[[str], str] | None = None) -> str:
        """Replace every slot with its value (escaped with `escape` when given; UnsafeLink for a bad link)."""
        if not self._names:
            return self.raw
        vals = self._filled(values, escape)
        parts = self._parts
        out = [parts[0]]
        for i, key in enumerate(self._slots, 1):
            out.append(vals[key])
            out.append(parts[i])
        return "".join(out)

    def filled_bytes(self, values: Mapping[str, str], escape: Callable[[str], str] | None = None) -> int:
        """len(fill(values, escape).encode()) without building the text (the checks size every reader)."""
        if self._literal_bytes is None:
            self._literal_bytes = sum(len(p.encode("utf-8")) for p in self._parts)
            self._counts = {key: self._slots.count(key) for key in set(self._slots)}
        total = self._literal_bytes
        vals = self._filled(values, escape, strict=False)  # the checks report a bad link themselves
        for key, n in self._counts.items():
            total += n * len(vals[key].encode("utf-8"))
        return total

    def __str__(self) -> str:
        return self.raw

    def __len__(self) -> int:
        return len(self.raw)
