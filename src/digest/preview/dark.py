"""Show an email as a light-mode or a dark-mode mail client would, whatever the viewer's own setting.

Clients that support dark mode for HTML email (Apple Mail, iOS Mail, Outlook for Mac, Thunderbird)
honour the message's `@media (prefers-color-scheme: dark)` rules and its `color-scheme` meta tag.
A browser iframe would follow the *viewer's* system setting instead, so the preview rewrites the
message: in each <style> block the `(prefers-color-scheme: dark|light)` media feature is replaced by
one that is always true or always false for the chosen mode, the color-scheme meta tags name only
that mode, and `:root { color-scheme: … }` fixes the browser's default colours to match.

Not emulated: clients that invert colours themselves (Gmail apps, Outlook.com's partial inversion).
"""

from __future__ import annotations

import re

MODES = ("light", "dark")

_STYLE_RE = re.compile(r"(<style\b[^>]*>)(.*?)(</style\s*>)", re.I | re.S)
_FEATURE_RE = re.compile(r"\(\s*prefers-color-scheme\s*:\s*(light|dark)\s*\)", re.I)
_META_RE = re.compile(r'(<meta\s+name="(?:color-scheme|supported-color-schemes)"\s+content=")[^"]*(")', re.I)
# Media features that are always true / always false for a screen of any size; they keep the rest
# of a combined query (`screen and (max-width: 480px) and (prefers-color-scheme: dark)`) intact.
ALWAYS = "(min-width: 0px)"
NEVER = "(max-width: -1px)"  # a negative length is invalid: that query matches nothing


def _media_for(mode: str):
    def replace(match: re.Match) -> str:
        return ALWAYS if match.group(1).lower() == mode else NEVER
    return replace


def emulate_color_scheme(html: str, mode: str) -> str:
    """The email's HTML as a client in `mode` ('light' or 'dark') shows it."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    replace = _media_for(mode)
    html = _STYLE_RE.sub(lambda m: m.group(1) + _FEATURE_RE.sub(replace, m.group(2)) + m.group(3), html)
    html = _META_RE.sub(lambda m: m.group(1) + mode + m.group(2), html)
    forced = f"<style>:root {{ color-scheme: {mode} !important; }}</style>"
    head_end = re.search(r"</head\s*>", html, re.I)
    if head_end:
        return html[:head_end.start()] + forced + html[head_end.start():]
    return forced + html
