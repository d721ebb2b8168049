"""Merge slots: per-recipient values that survive the once-per-issue render and are filled cheaply.

A slot is written into the rendered output as `%%DIGEST.<field>%%` — plain ASCII letters, digits,
dots, underscores and percent signs, which Jinja, MJML, premailer (even inside href attributes) and
Markdown all leave alone. Filling is a list join, never a re-render.
"""

from __future__ import annotations

import re
from typing import Callable, Mapping

SLOT_RE = re.compile(r"%%DIGEST\.([A-Za-z_][A-Za-z0-9_]*)%%")
# How an issue's author writes a merge field in the issue file's text: {{ first_name }}
CONTENT_FIELD_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# Markdown link destinations get percent-encoded: %%DIGEST.x%% becomes %25%25DIGEST.x%25%25.
ENCODED_SLOT_RE = re.compile(r"%25%25DIGEST\.([A-Za-z_][A-Za-z0-9_]*)%25%25")


def slot(field: str) -> str:
    """The marker for one merge field."""
    return f"%%DIGEST.{field}%%"


def content_to_slots(text: str) -> str:
    """Turn `{{ field }}` written in issue content into slot markers."""
    return CONTENT_FIELD_RE.sub(lambda m: slot(m.group(1)), text)


def repair_encoded_slots(html: str) -> str:
    """Undo percent-encoding of slot markers inside link destinations."""
    return ENCODED_SLOT_RE.sub(lambda m: slot(m.group(1)), html)


class SlotText:
    """Text with merge slots, split once so that each fill is a single join."""

    __slots__ = ("raw", "_parts", "_names", "fields")

    def __init__(self, raw: str):
        self.raw = raw
        pieces = SLOT_RE.split(raw)
        self._parts = pieces[0::2]   # literal text around the slots
        self._names = pieces[1::2]   # field name of each slot, in order
        self.fields = frozenset(self._names)

    def fill(self, values: Mapping[str, str], escape: Callable[[str], str] | None = None) -> str:
        """Replace every slot with its value (escaped with `escape` when given)."""
        if not self._names:
            return self.raw
        vals = {name: (escape(values[name]) if escape else values[name]) for name in self.fields}
        parts = self._parts
        out = [parts[0]]
        for i, name in enumerate(self._names, 1):
            out.append(vals[name])
            out.append(parts[i])
        return "".join(out)

    def __str__(self) -> str:
        return self.raw

    def __len__(self) -> int:
        return len(self.raw)
