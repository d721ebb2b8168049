"""Checks on the rendered email: images, links, size, and what the law and the big inboxes require."""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser
from typing import TYPE_CHECKING

from digest.checks.content import find_in_templates, shown, where_in_issue
from digest.checks.findings import CheckReport
from digest.compose.slots import SLOT_RE, slot

if TYPE_CHECKING:  # pragma: no cover
    from digest.compose.issue import Issue
    from digest.compose.render import Rendered
    from digest.config import Settings

GMAIL_CLIP = 102_400            # bytes of HTML after which Gmail shows "[Message clipped]"
NEAR_CLIP = 90 * 1024           # warn from here: a longer name or link in one reader's copy tips it over
MESSAGE_WARN = 1024 * 1024      # a whole message over 1 MB is slow on mobile connections
MESSAGE_LIMIT = 10 * 1000 * 1000  # Postmark, Amazon SES and others refuse messages over 10 MB
SAFE_SCHEMES = ("https:", "http:", "mailto:", "tel:")
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):", re.I)


class _Elements(HTMLParser):
    """The <img> and <a> elements of an HTML document, with their attributes and the links' text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.images: list[dict[str, str]] = []
        self.links: list[dict[str, str]] = []
        self.html_attrs: dict[str, str] = {}
        self._open_link: dict[str, str] | None = None

    def handle_starttag(self, tag, attrs):
        values = {k: v or "" for k, v in attrs}
        if tag == "html":
            self.html_attrs = values
        elif tag == "img":
            self.images.append(values)
        elif tag == "a":
            self._open_link = {**values, "_text": ""}
            self.links.append(self._open_link)

    def handle_endtag(self, tag):
        if tag == "a":
            self._open_link = None

    def handle_data(self, data):
        if self._open_link is not None:
            self._open_link["_text"] += data


def elements(html: str) -> _Elements:
    """Parse the rendered HTML once (slot markers stay as they are)."""
    parser = _Elements()
    parser.feed(html)
    parser.close()
    return parser


def check_image_files(report: CheckReport, issue: "Issue", settings: "Settings") -> None:
    """Every local image file the issue names exists (checked before rendering, which needs them)."""
    for key, image in [("header_image", issue.header_image),
                       *((f"sections[{i}].image", s.image) for i, s in enumerate(issue.sections))]:
        for attr in ("src", "dark_src"):
            src = getattr(image, attr, None) if image is not None else None
            if src and not _SCHEME.match(src) and not src.startswith("//"):
                path = (issue.path.parent / src).resolve()
                if not path.is_file():
                    report.add("image-missing-file", f"image file {shown(path, settings)} does not exist.",
                               where_in_issue(issue, settings, f"{key}.{attr}"),
                               "fix the path: it is relative to the issue file")


def check_images(report: CheckReport, issue: "Issue", settings: "Settings", parsed: _Elements) -> None:
    """Every <img> has alt text, an absolute https URL and pixel width and height."""
    for img in parsed.images:
        src = unescape(img.get("src", ""))
        where = _where_src(issue, settings, src)
        if not img.get("alt", "").strip():
            report.add("image-no-alt", f"the image {src} has no alt text.", where, "add alt: to the image")
        if src.startswith("http://"):
            report.add("image-http", f"the image {src} is loaded over plain http.", where,
                       "publish it on https (check [newsletter] assets_url)")
        elif not src.startswith(("https://", "cid:")):
            report.add("image-not-absolute", f"the image URL {src!r} is not absolute.", where,
                       "set [newsletter] assets_url to the https address the images are published at")
        if not img.get("width", "").isdigit():
            report.add("image-no-size", f"the image {src} has no pixel width (width={img.get('width')!r}).",
                       where, "give the image a width: in the issue file, or fix the template")
        elif not img.get("height", "").isdigit():
            report.add("image-no-height", f"the image {src} has no pixel height (height={img.get('height')!r}).",
                       where, "use a local image file: digest measures it and writes the height Outlook needs")


def _where_src(issue: "Issue", settings: "Settings", url: str) -> str:
    """The issue line of the image whose published URL is `url` (or the issue file)."""
    for key, image in [("header_image", issue.header_image),
                       *((f"sections[{i}].image", s.image) for i, s in enumerate(issue.sections))]:
        if image is not None and any(src and url.endswith(src.lstrip("./")) for src in (image.src, image.dark_src)):
            return where_in_issue(issue, settings, f"{key}.src")
    return shown(issue.path, settings)


def check_links(report: CheckReport, issue: "Issue", settings: "Settings", parsed: _Elements) -> list[str]:
    """Links are absolute https (or mailto/tel), never empty or script; returns the static ones to try online."""
    static: list[str] = []
    for link in parsed.links:
        href = unescape(link.get("href", "")).strip()
        where = _where_href(issue, settings, href)
        if not href:
            report.add("link-empty", f"the link '{link['_text'].strip()[:40]}' has an empty href.", where)
            continue
        if SLOT_RE.match(href):
            continue  # a merge field: checked per reader (unsubscribe/web version links are digest's own)
        scheme = _SCHEME.match(href)
        if scheme is None:
            report.add("link-not-absolute", f"the link {href!r} is relative: it leads nowhere from an inbox.",
                       where, "write the whole address, https://…")
        elif scheme.group(0).lower() not in SAFE_SCHEMES:
            report.add("link-scheme", f"the link {href[:60]!r} uses {scheme.group(1)}:, which mail clients "
                       "block or run.", where, "link to an https:// page instead")
        elif href.lower().startswith("http://"):
            report.add("link-http", f"the link {href} uses plain http.", where, "use its https:// address")
        if href.lower().startswith(("http://", "https://")) and not SLOT_RE.search(href):
            static.append(href)
    return sorted(set(static))


def _where_href(issue: "Issue", settings: "Settings", href: str) -> str:
    from digest.checks.content import issue_texts

    if href:
        for key, text in issue_texts(issue):
            offset = text.find(href)
            if offset >= 0:
                return where_in_issue(issue, settings, key, text, offset)
    return find_in_templates(settings, "href=") if not href else shown(issue.path, settings)


def check_compliance(report: CheckReport, issue: "Issue", rendered: "Rendered", settings: "Settings",
                     parsed: _Elements, headers: dict[str, str]) -> None:
    """Postal address and a visible unsubscribe link in both parts, one-click headers, lang, text, preheader."""
    issue_file = shown(issue.path, settings)
    address = settings.newsletter.postal_address.strip()
    html_text = unescape(re.sub(r"<[^>]+>", " ", rendered.html.raw))
    flat = " ".join(html_text.split())
    for part, text in (("HTML part", flat), ("text part", " ".join(rendered.text.raw.split()))):
        if not address or " ".join(address.split()) not in text:
            report.add("compliance-postal-address", f"the {part} does not show the postal address.",
                       "digest.toml [newsletter] postal_address" if not address else find_in_templates(settings, "postal"),
                       "set [newsletter] postal_address and keep it in the templates' footer")
    unsubscribe = slot("unsubscribe_url")
    if not any(link.get("href", "").strip() == unsubscribe and link["_text"].strip() for link in parsed.links):
        report.add("compliance-unsubscribe-link", "the HTML part has no visible unsubscribe link.",
                   find_in_templates(settings, "footer") or issue_file,
                   "keep <a href=\"{{ unsubscribe_url }}\">Unsubscribe</a> in the footer template")
    if unsubscribe not in rendered.text.raw:
        report.add("compliance-unsubscribe-link", "the text part has no unsubscribe link.",
                   find_in_templates(settings, ".txt.j2") or issue_file, "keep {{ unsubscribe_url }} in the text template")
    if not headers.get("List-Unsubscribe", "").startswith("<https://") or "List-Unsubscribe-Post" not in headers:
        report.add("compliance-one-click", "List-Unsubscribe has no https URL, so there is no one-click "
                   "List-Unsubscribe-Post header (Gmail and Yahoo require it for bulk mail).",
                   "digest.toml [unsubscribe] url", "make [unsubscribe] url an https:// address")
    if not parsed.html_attrs.get("lang"):
        report.add("compliance-lang", "the HTML has no lang attribute.", "digest.toml [newsletter] language",
                   "set [newsletter] language (en, nl, …)")
    if not rendered.text.raw.strip():
        report.add("compliance-text-part", "the plain-text part is empty.", find_in_templates(settings, ".txt"))
    if not issue.preheader.strip():
        report.add("compliance-preheader", "the issue has no preheader.", issue_file,
                   "add preheader: one sentence that shows after the subject in the inbox")


def check_size(report: CheckReport, html_bytes: int, message_bytes: int, who: str) -> None:
    """The largest reader's HTML part against Gmail's clip, and the whole message against providers' limits."""
    report.largest_html_bytes = max(report.largest_html_bytes, html_bytes)
    report.largest_message_bytes = max(report.largest_message_bytes, message_bytes)
    if html_bytes > GMAIL_CLIP:
        report.add("size-clipped", f"the HTML part is {html_bytes:,} bytes for {who}: Gmail clips it after "
                   f"{GMAIL_CLIP:,} and hides the rest, unsubscribe link included.", "",
                   "shorten the issue (each section of the example's length adds ~5 KB) or split it in two")
    elif html_bytes > NEAR_CLIP:
        report.add("size-near-clip", f"the HTML part is {html_bytes:,} bytes for {who}, close to Gmail's "
                   f"{GMAIL_CLIP:,}-byte clip.", "", "shorten a section or two to keep a margin")
    if message_bytes > MESSAGE_LIMIT:
        report.add("size-message-limit", f"the message is {message_bytes:,} bytes: over the 10 MB most "
                   "providers accept.", "", "link large images instead of embedding them")
    elif message_bytes > MESSAGE_WARN:
        report.add("size-message", f"the message is {message_bytes:,} bytes (over 1 MB).", "",
                   "make it lighter: readers on mobile data wait for it")
