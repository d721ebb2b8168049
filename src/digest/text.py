"""Small text rules used everywhere: the one slugify and the one header sanitiser."""

from __future__ import annotations

import re
import unicodedata

_HEADER_UNSAFE = re.compile(r"[\r\n\0]")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_KEY_SPACING = re.compile(r"[\s\-]+")


def slugify(text: str, *, max_length: int | None = 60, fallback: str = "issue") -> str:
    """Lower-case ASCII words joined by '-' (accents dropped: 'Één café' → 'een-cafe'); `fallback` if none."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = _NOT_SLUG.sub("-", ascii_text.lower()).strip("-")
    if max_length is not None:
        slug = slug[:max_length].rstrip("-")
    return slug or fallback


def header_safe(value: str) -> str:
    """A value that can never start a new header line: CR, LF and NUL removed, edges trimmed.

    Removed rather than replaced, as RFC 5322 unfolding does ("Hi\\r\\n there" → "Hi there").
    """
    if "\r" in value or "\n" in value or "\0" in value:
        value = _HEADER_UNSAFE.sub("", value)
    return value.strip(" \t")


def field_key(name: str) -> str:
    """A column or merge-field name as digest matches it: 'First Name', 'first-name' → 'first_name'."""
    return _KEY_SPACING.sub("_", name.strip().lower()).strip("_")
