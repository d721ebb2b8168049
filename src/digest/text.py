"""Small text rules used everywhere: the one slugify and the one header sanitiser."""

from __future__ import annotations

import binascii
import re
import unicodedata

# Everything that ends a line for some reader of a header (CR, LF, NEL, VT, FF, FS/GS/RS, U+2028,
# U+2029: what str.splitlines() splits on) and every other C0/C1 control (NUL, ESC, DEL, CSI …).
# TAB stays: it is folding whitespace in a header.
_HEADER_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
# An RFC 2047 encoded-word; the charset may carry an RFC 2231 language tag ("utf-8*en").
_ENCODED_WORD = re.compile(r"=\?([^?*\s]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=")
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
    """A value that can never start or hide a new header line, for every transport.

    Line breaks of every kind (CR, LF, NEL, U+2028, U+2029, VT, FF, FS/GS/RS) and other control
    characters (NUL, ESC, DEL, C1) are removed, as are the ones an RFC 2047 encoded-word would
    produce when decoded: such a word is replaced by its decoded text without them, so no decoder
    downstream (a provider, a mail client) can turn it back into a line break. Edges are trimmed.
    Removed rather than replaced, as RFC 5322 unfolding does ("Hi\\r\\n there" → "Hi there").
    """
    if value.isascii() and value.isprintable() and "=?" not in value:
        return value.strip(" \t")  # the common case, checked at C speed
    if "=?" in value:
        value = _ENCODED_WORD.sub(_defuse_encoded_word, value)
    return _HEADER_UNSAFE.sub("", value).strip(" \t")


def _defuse_encoded_word(match: re.Match) -> str:
    """An encoded-word as it was, or its decoded text without line breaks if it decodes to one."""
    charset, encoding, payload = match.groups()
    try:
        if encoding in "bB":
            raw = binascii.a2b_base64(payload + "=" * (-len(payload) % 4))
        else:
            raw = binascii.a2b_qp(payload.encode("ascii"), header=True)
        decoded = raw.decode(charset, errors="replace")
    except (LookupError, ValueError, UnicodeError):
        return match.group(0)  # undecodable: no decoder can turn it into a line break either
    return _HEADER_UNSAFE.sub("", decoded) if _HEADER_UNSAFE.search(decoded) else match.group(0)


def field_key(name: str) -> str:
    """A column or merge-field name as digest matches it: 'First Name', 'first-name' → 'first_name'."""
    return _KEY_SPACING.sub("_", name.strip().lower()).strip("_")


# What a terminal would obey rather than show: C0 controls (ESC starts colour, title and clipboard
# sequences; CR overwrites the line), DEL, C1 (0x9b is an 8-bit CSI) and the bidirectional overrides
# and isolates that reorder what is shown. TAB stays.
_TERMINAL_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_TERMINAL_UNSAFE_KEEP_LF = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str, *, multiline: bool = False) -> str:
    """Text from data (a list, a provider, an argument) as a terminal shows it: every control character
    written out as an escape ('\\x1b', '\\u202e'), never obeyed; line breaks too unless `multiline`."""
    if text.isprintable():
        return text  # the common case, checked at C speed
    pattern = _TERMINAL_UNSAFE_KEEP_LF if multiline else _TERMINAL_UNSAFE
    return pattern.sub(_escape_control, text)


def _escape_control(match: re.Match) -> str:
    code = ord(match.group(0))
    return {0x0A: "\\n", 0x0D: "\\r"}.get(code) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
