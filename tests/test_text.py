"""The one header sanitiser: nothing that can end a header line or hide one survives it."""

from __future__ import annotations

import pytest

from digest.text import header_safe


@pytest.mark.parametrize("separator", ["\r\n", "\n", "\r", "\u2028", "\u2029", "\x85", "\x0b", "\x0c",
                                       "\x1c", "\x1d", "\x1e", "\x00"])
def test_line_separators_of_every_kind_are_removed(separator):
    assert header_safe(f"Hello{separator}Bcc: evil@evil.test") == "HelloBcc: evil@evil.test"


def test_terminal_and_other_control_characters_are_removed():
    assert header_safe("News\x1b]0;owned\x07 \x1b[31mred\x7f\x9b") == "News]0;owned [31mred"


@pytest.mark.parametrize("word", [
    "=?utf-8?q?Ann=0D=0ABcc:_evil=40evil.test?=",        # Q: CR LF
    "=?UTF-8?Q?Ann=E2=80=A8Bcc:_evil=40evil.test?=",      # Q: U+2028
    "=?utf-8?b?QW5uDQpCY2M6IGV2aWxAZXZpbC50ZXN0?=",       # B: CR LF
    "=?iso-8859-1*en?q?Ann=85Bcc:_evil=40evil.test?=",    # RFC 2231 language tag; C1 NEL
])
def test_encoded_words_that_decode_to_line_breaks_are_spelled_out_without_them(word):
    assert header_safe(f"{word} <x@example.org>") == "AnnBcc: evil@evil.test <x@example.org>"


def test_ordinary_text_is_left_alone():
    for value in ["Innovation Hub News", "Zoë Müller-Łukasiewicz", "Learning & Innovation: 2023",
                  "=?utf-8?q?Caf=C3=A9?=", "=?utf-8?q?broken", "a\tb", "日本語のニュース"]:
        assert header_safe(value) == value
    assert header_safe("  padded \t") == "padded"
    assert header_safe("Hi\r\n there") == "Hi there"  # as RFC 5322 unfolding reads it
