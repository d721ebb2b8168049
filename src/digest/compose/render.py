"""Issue → Rendered (subject, preheader, html, text with merge slots): Jinja → MJML → HTML → inlined CSS.

Runs once per issue. Per-recipient work is `SlotText.fill` (see personalize.py), never this.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import logging
import re
from dataclasses import dataclass
from html import unescape as html_unescape
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import urljoin, urlparse

import jinja2
from markupsafe import Markup

from digest.compose import markdown
from digest.compose.issue import Issue
from digest.compose.slots import SlotText, content_to_slots, slot, slot_for
from digest.errors import RenderError

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings

GMAIL_CLIP_BYTES = 102 * 1024  # Gmail hides everything after ~102 KB of HTML behind "[Message clipped]"

# Every element MJML 4 defines. mjml-python passes unknown elements through silently, so we check.
MJML_TAGS = frozenset("""
mjml mj-head mj-body mj-attributes mj-all mj-class mj-breakpoint mj-font mj-html-attributes
mj-html-attribute mj-selector mj-preview mj-style mj-title mj-raw mj-include mj-accordion
mj-accordion-element mj-accordion-title mj-accordion-text mj-button mj-carousel mj-carousel-image
mj-column mj-divider mj-group mj-hero mj-image mj-navbar mj-navbar-link mj-section mj-social
mj-social-element mj-spacer mj-table mj-text mj-wrapper
""".split())
_MJ_TAG_RE = re.compile(r"<(mj-[a-zA-Z-]+|mjml)\b")

COLOR_SCHEME_META = ('<meta name="color-scheme" content="light dark">'
                     '<meta name="supported-color-schemes" content="light dark">')
# Apple Mail must not rescale the layout, and iOS must not turn dates, the postal address and
# phone-like numbers into links (they would change colour and lead to Maps or the dialer).
APPLE_METAS = ('<meta name="x-apple-disable-message-reformatting">'
               '<meta name="format-detection" content="telephone=no, date=no, address=no, email=no, url=no">')
# After the preheader: invisible characters that fill the inbox preview, so it does not run on
# into the first words of the body ("View in browser", the masthead's alt text).
PREHEADER_FILLER = Markup("&#847;&zwnj;&nbsp;" * 60)
_IMG_RE = re.compile(r"<img\b[^>]*>", re.I)


@dataclass(frozen=True)
class Rendered:
    """An issue rendered once: every part still carries its merge slots."""

    issue: Issue
    subject: SlotText
    preheader: SlotText
    html: SlotText
    text: SlotText
    fingerprint: str
    assets: tuple[Path, ...]  # local image files the issue refers to by relative path
    # image src as written → the content-hashed name it is published under at assets_url (see
    # published_asset); empty when the render placed images itself (asset_base given)
    published: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def slug(self) -> str:
        return self.issue.slug

    @property
    def fields(self) -> frozenset[str]:
        """Every merge field used anywhere in the message."""
        return self.subject.fields | self.preheader.fields | self.html.fields | self.text.fields

    @property
    def html_bytes(self) -> int:
        return len(self.html.raw.encode("utf-8"))


class SlotProxy:
    """`subscriber` in templates: any attribute becomes that field's merge slot."""

    def __getattr__(self, name: str) -> Markup:
        if name.startswith("__"):
            raise AttributeError(name)
        return Markup(slot_for(name))  # `subscriber.First_Name` is the first_name column, as in issues

    __getitem__ = __getattr__


def _longdate(value: dt.date) -> str:
    return f"{value.day} {value:%B %Y}"


def _hostname(url: str) -> str:
    return urlparse(url).hostname or url


def _environment(settings: "Settings", asset_base: str) -> jinja2.Environment:
    folder = settings.path("templates")
    if not folder.is_dir():
        raise RenderError(f"templates folder {folder} does not exist.",
                          "set [paths] templates in digest.toml, or copy templates/ from the digest repository")
    return _cached_environment(str(folder), asset_base)


def forget_compiled_templates() -> None:
    """Drop compiled templates (the preview calls this when a watched file changed)."""
    _cached_environment.cache_clear()


@functools.lru_cache(maxsize=8)
def _cached_environment(folder: str, asset_base: str) -> jinja2.Environment:
    # Kept between renders so compiled templates are reused; auto_reload (on by default) still
    # recompiles a template whose file changed, which the live preview relies on.
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        autoescape=lambda name: bool(name) and not name.endswith(".txt.j2"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["markdown"] = lambda text: Markup(markdown.to_html(text))
    env.filters["markdown_text"] = markdown.to_text
    env.filters["asset"] = jinja2.pass_context(
        lambda ctx, src: asset_url(ctx.get("asset_names", {}).get(src, src), asset_base))
    env.filters["longdate"] = _longdate
    env.filters["hostname"] = _hostname
    return env


def asset_url(src: str, asset_base: str) -> str:
    """An image `src` as the email links it: absolute URLs as they are, relative ones joined to asset_base."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", src, re.I) or src.startswith("//"):
        return src
    return urljoin(asset_base, src.lstrip("./") if src.startswith("./") else src)


def published_asset(src: str, folder: Path) -> str:
    """The name a local image is published under, relative to assets_url: its path with 10 hex digits
    of its bytes' SHA-256 before the suffix (images/header.png → images/header.3f2a9c1b0d.png).

    Two issues' `images/header.png` never share a URL, and a changed image gets a new one (no cache
    shows the old picture). A file outside the issue's folder (`../shared/logo.png`) goes to shared/.
    """
    digest = hashlib.sha256((folder / src).read_bytes()).hexdigest()[:10]
    rel = PurePosixPath(src.replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts:
        rel = PurePosixPath("shared", rel.name)
    rel = PurePosixPath(*[part for part in rel.parts if part != "."])
    return str(rel.with_name(f"{rel.stem}.{digest}{rel.suffix}"))


def _template_location(exc: BaseException, folder: Path) -> str:
    """file:line of the innermost template frame in a Jinja traceback."""
    where = ""
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.startswith(str(folder)):
            where = f"{Path(filename).relative_to(folder.parent)}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


def _render_template(env: jinja2.Environment, name: str, context: dict[str, Any], settings: "Settings") -> str:
    folder = settings.path("templates")
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateNotFound as exc:
        available = sorted(p.name for p in folder.glob("*.j2"))
        raise RenderError(f"template '{exc.name}' not found in {folder}.",
                          f"templates there: {', '.join(available) or 'none'}; "
                          "check [newsletter] template in digest.toml or the issue's 'template' field")
    except jinja2.TemplateSyntaxError as exc:
        where = f"{Path(exc.filename).relative_to(folder.parent)}:{exc.lineno}" if exc.filename else name
        raise RenderError(f"{where}: template syntax error: {exc.message}.")
    except jinja2.UndefinedError as exc:
        where = _template_location(exc, folder) or f"templates/{name}"
        raise RenderError(f"{where}: undefined template variable: {exc.message}.",
                          "fix the name, or add the value to digest.toml / the issue file")


def _check_mjml(mjml_source: str, settings: "Settings", template: str) -> None:
    for match in _MJ_TAG_RE.finditer(mjml_source):
        tag = match.group(1).lower()
        if tag not in MJML_TAGS:
            line = mjml_source.count("\n", 0, match.start()) + 1
            raise RenderError(f"{_find_in_templates(settings, '<' + match.group(1)) or f'templates/{template} (MJML line {line})'}: "
                              f"unknown MJML element <{match.group(1)}>.",
                              "see https://documentation.mjml.io for the elements MJML knows")


def _find_in_templates(settings: "Settings", needle: str) -> str | None:
    folder = settings.path("templates")
    for path in sorted(folder.rglob("*.j2")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if needle in line:
                return f"{path.relative_to(folder.parent)}:{number}"
    return None


def compile_mjml(mjml_source: str, settings: "Settings", template: str) -> str:
    """MJML → HTML with mjml-python (the Rust MRML port), after a strict element check."""
    _check_mjml(mjml_source, settings, template)
    import mjml  # imported here: `digest --help` must not pay for it

    try:
        return mjml.mjml2html(mjml_source)
    except Exception as exc:  # mjml-python raises ValueError with MRML's message
        raise RenderError(f"templates/{template}: invalid MJML: {exc}.",
                          "check that every <mj-…> element is closed and nested as MJML expects")


def _fetch_nothing(url: str) -> None:
    """cssutils' fetcher for @import while inlining: nothing is read, neither http(s):// nor file://."""
    return None  # "could not fetch": the @import stays in <style> for the mail client, unresolved here


def inline_css(html: str) -> str:
    """Inline <style> rules into style attributes with premailer; keep media queries and comments."""
    import cssutils
    import premailer

    class Offline(premailer.Premailer):
        # premailer's allow_network covers <link> only; cssutils follows @import with its own fetcher.
        def _parse_css_string(self, css_body, validate=True):
            return cssutils.CSSParser(fetcher=_fetch_nothing, validate=validate).parseString(css_body)

    # cssutils logs ~20 warnings per call about properties it does not know (mso-*, -webkit-*).
    cssutils.log.setLevel(logging.CRITICAL)
    logging.getLogger("premailer").setLevel(logging.CRITICAL)
    try:
        return Offline(
            html,
            keep_style_tags=True,       # media queries, dark mode, Thunderbird rules stay in <head>
            strip_important=False,      # !important must survive (dark-mode overrides need it)
            remove_classes=False,       # the dark-mode and responsive rules select by class
            disable_validation=True,
            cssutils_logging_level=logging.CRITICAL,
            allow_network=False,
            exclude_pseudoclasses=True,
            base_url=None,
            # premailer would copy `width:100%` from the style over MJML's pixel width="600" (and
            # height): Outlook for Windows ignores CSS widths and shows a percentage-width image at
            # its natural size. The pixel attributes stay; the CSS keeps images fluid elsewhere.
            disable_basic_attributes=["width", "height"],
        ).transform(pretty_print=False)
    except Exception as exc:
        raise RenderError(f"CSS inlining failed: {exc}.", "check the CSS in the templates' <mj-style> blocks")


def _finish_html(html: str, image_sizes: dict[str, tuple[int, int]]) -> str:
    """What premailer drops or never had: the doctype (no quirks mode), the metas, image heights."""
    metas = APPLE_METAS + ("" if 'name="color-scheme"' in html else COLOR_SCHEME_META)
    html = html.replace("<head>", "<head>" + metas, 1)
    if not html.lstrip().lower().startswith("<!doctype"):
        html = "<!doctype html>" + html
    return _IMG_RE.sub(lambda m: _with_height(m.group(0), image_sizes), html)


def _with_height(tag: str, image_sizes: dict[str, tuple[int, int]]) -> str:
    """An <img> with its pixel height for its pixel width, when the image file's size is known.

    MJML writes height="auto"; Outlook for Windows wants pixels. The style keeps height:auto, so
    the image still scales on narrow screens.
    """
    src = re.search(r'\ssrc="([^"]*)"', tag)
    width = re.search(r'\swidth="(\d+)"', tag)
    size = image_sizes.get(html_unescape(src.group(1))) if src else None
    if not (size and width and size[0]):
        return tag
    height = round(int(width.group(1)) * size[1] / size[0])
    if re.search(r'\sheight="[^"]*"', tag):
        return re.sub(r'\sheight="[^"]*"', f' height="{height}"', tag, count=1)
    return tag.replace("<img", f'<img height="{height}"', 1)


def _image_sizes(issue: Issue, base: str, names: Mapping[str, str]) -> dict[str, tuple[int, int]]:
    """{URL the email uses: (width, height) in pixels} of the issue's local image files."""
    import imagesize

    sizes = {}
    for img in [issue.header_image, *(s.image for s in issue.sections)]:
        for src in (img.src, img.dark_src) if img is not None else ():
            if not src or re.match(r"^[a-z][a-z0-9+.-]*:|^//", src, re.I):
                continue
            try:
                w, h = imagesize.get(str(issue.path.parent / src))
            except (OSError, ValueError):
                continue  # unreadable: the checks report it
            if w > 0 and h > 0:
                sizes[asset_url(names.get(src, src), base)] = (w, h)
    return sizes


def _local_assets(issue: Issue) -> tuple[Path, ...]:
    """The image files the issue names by relative path; RenderError for one that is not there."""
    assets = tuple(
        (issue.path.parent / src).resolve()
        for img in [issue.header_image, *(s.image for s in issue.sections)] if img is not None
        for src in (img.src, img.dark_src)
        if src and not re.match(r"^[a-z][a-z0-9+.-]*:|^//", src, re.I)
    )
    for asset in assets:
        try:
            found = asset.is_file()
        except OSError as exc:  # e.g. a name longer than the file system allows (ENAMETOOLONG)
            raise RenderError(f"{issue.path}: image file {str(asset)[:120]}…: {exc.strerror}.",
                              "fix the image 'src' (relative paths are relative to the issue file)") from None
        if not found:
            raise RenderError(f"{issue.path}: image file {asset} does not exist.",
                              "fix the image 'src' (relative paths are relative to the issue file)")
    return assets


def render_issue(issue: Issue, settings: "Settings", *, asset_base: str | None = None,
                 web: bool = False, hashed_assets: bool | None = None) -> Rendered:
    """Run the whole pipeline once for an issue (`web`: the web version, whose footer reads as a page's).

    Images go on assets_url under their content-hashed names (published_asset), where `digest
    publish` puts them; with an explicit `asset_base` they keep their names (the caller places the
    files), unless `hashed_assets` says otherwise."""
    base = asset_base if asset_base is not None else settings.newsletter.assets_url
    hashed = asset_base is None if hashed_assets is None else hashed_assets
    env = _environment(settings, base)
    template = issue.template or settings.newsletter.template
    assets = _local_assets(issue)
    names = {src: published_asset(src, issue.path.parent) for src in _local_srcs(issue)} if hashed else {}
    subject = content_to_slots(issue.subject)
    preheader = content_to_slots(issue.preheader)
    context = {
        "newsletter": settings.newsletter,
        "colors": settings.colors,
        "issue": issue,
        "sections": issue.sections,
        "subject": subject,  # plain strings: autoescaped in HTML; slot markers need no escaping
        "preheader": preheader,
        "subscriber": SlotProxy(),
        "unsubscribe_url": Markup(slot("unsubscribe_url")),
        "web_version_url": Markup(slot("web_version_url")),
        "web_version": web,
        "preheader_filler": PREHEADER_FILLER,
        "asset_names": names,
    }
    mjml_source = _render_template(env, f"{template}.mjml.j2", context, settings)
    html = _finish_html(inline_css(compile_mjml(mjml_source, settings, f"{template}.mjml.j2")),
                        _image_sizes(issue, base, names))
    text = _render_template(env, f"{template}.txt.j2", context, settings).strip() + "\n"
    digest = hashlib.sha256()
    for part in (subject, preheader, html, text):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return Rendered(
        issue=issue,
        subject=SlotText(subject),
        preheader=SlotText(preheader),
        html=SlotText(html, urls=True),  # slots in an href or src are filled as URLs
        text=SlotText(text),
        fingerprint=digest.hexdigest(),
        assets=assets,
        published=names,
    )


def _local_srcs(issue: Issue) -> list[str]:
    """The image srcs of an issue that name a file (not a URL)."""
    return [src for img in [issue.header_image, *(s.image for s in issue.sections)] if img is not None
            for src in (img.src, img.dark_src) if src and not re.match(r"^[a-z][a-z0-9+.-]*:|^//", src, re.I)]
