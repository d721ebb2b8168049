"""Issue Markdown → email-safe HTML, and → readable plain text that keeps every link's URL."""

from __future__ import annotations

import textwrap
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.token import Token

from digest.compose.slots import content_to_slots, repair_encoded_slots

TEXT_WIDTH = 72
# Lists and quotes inside each other. markdown-it stops at 20 levels of tokens (10 lists) and drops
# whatever is deeper without a word, so an issue file is refused before that.
MAX_NESTING = 8
_CONTAINERS = frozenset({"bullet_list_open", "ordered_list_open", "blockquote_open"})


@lru_cache(maxsize=1)
def _md() -> MarkdownIt:
    # Raw HTML in issue files is off: content is escaped, so a stray <script> is shown, not run.
    return MarkdownIt("commonmark", {"html": False, "typographer": False}).enable("strikethrough")


def to_html(text: str) -> str:
    """Markdown (with {{ field }} merge fields) → HTML fragment."""
    if not text:
        return ""
    return repair_encoded_slots(_md().render(content_to_slots(text))).strip()


def too_deep(text: str) -> int | None:
    """The line (0-based, in `text`) where lists and quotes nest deeper than MAX_NESTING; None if they do not."""
    depth = 0
    for tok in _md().parse(text):
        if tok.type in _CONTAINERS:
            depth += 1
            if depth > MAX_NESTING:
                return tok.map[0] if tok.map else 0
        elif tok.nesting < 0 and tok.type.replace("_close", "_open") in _CONTAINERS:
            depth -= 1
    return None


def _inline_text(tokens: list[Token]) -> str:
    out: list[str] = []
    link_stack: list[tuple[str, int]] = []
    for tok in tokens:
        if tok.type == "text" or tok.type == "code_inline":
            out.append(tok.content)
        elif tok.type == "softbreak":
            out.append(" ")
        elif tok.type == "hardbreak":
            out.append("\n")
        elif tok.type == "link_open":
            link_stack.append((tok.attrs.get("href", ""), len(out)))
        elif tok.type == "link_close":
            href, start = link_stack.pop()
            label = "".join(out[start:])
            href = repair_encoded_slots(str(href))
            if href.startswith("mailto:") and label == href[7:]:
                continue
            if label.strip() != href:
                out.append(f" ({href})")
        elif tok.type == "image":
            alt = "".join(c.content for c in (tok.children or []))
            out.append(f"[{alt}] ({tok.attrs.get('src', '')})")
    return "".join(out)


def _wrap(text: str, indent: str = "", first: str | None = None) -> str:
    lines = []
    for i, para_line in enumerate(text.split("\n")):
        lines.append(textwrap.fill(
            para_line, width=TEXT_WIDTH, break_long_words=False, break_on_hyphens=False,
            initial_indent=(first if first is not None and i == 0 else indent), subsequent_indent=indent,
        ))
    return "\n".join(lines)


def to_text(text: str) -> str:
    """Markdown → plain text: wrapped paragraphs, numbered/bulleted lists, links as 'label (url)'."""
    if not text:
        return ""
    tokens = _md().parse(content_to_slots(text))
    blocks: list[tuple[str, bool]] = []  # (text, is a list item)
    lists: list[list] = []  # stack of [ordered, counter]
    prefix_next: str | None = None
    for tok in tokens:
        if tok.type in ("bullet_list_open", "ordered_list_open"):
            start = int(tok.attrs.get("start", 1)) if tok.type == "ordered_list_open" else 0
            lists.append([tok.type == "ordered_list_open", start])
        elif tok.type in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif tok.type == "list_item_open":
            ordered, n = lists[-1]
            prefix_next = f"{n}. " if ordered else "- "
            lists[-1][1] += 1
        elif tok.type == "inline":
            depth = max(len(lists) - 1, 0)
            base = "   " * depth
            content = _inline_text(tok.children or [])
            if prefix_next is not None:
                blocks.append((_wrap(content, indent=base + " " * len(prefix_next), first=base + prefix_next), True))
                prefix_next = None
            elif lists:
                blocks.append((_wrap(content, indent=base + "   "), True))
            else:
                blocks.append((_wrap(content), False))
        elif tok.type in ("fence", "code_block"):
            blocks.append((textwrap.indent(tok.content.rstrip("\n"), "    "), False))
        elif tok.type == "hr":
            blocks.append(("-" * 20, False))
    # Paragraphs are separated by a blank line; the items of a list stay together.
    out: list[str] = []
    previous_item = False
    for text_block, is_item in blocks:
        if out and not (is_item and previous_item):
            out.append("")
        out.append(text_block)
        previous_item = is_item
    return "\n".join(out).strip("\n")
