"""Issue file (YAML) → Issue/Section objects; every error names the file, the line and the field."""

from __future__ import annotations

import datetime as dt
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from digest.compose.yamlfile import Node, parse_issue_yaml
from digest.errors import IssueError

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings

ISSUE_SUFFIXES = (".yaml", ".yml")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
# Limits that keep one hostile or runaway file from stalling a build, the preview or a --due run
# (with yamlfile's on the file's size and nesting). Gmail clips an email after ~102 KB of HTML,
# so none of them stops a real newsletter.
MAX_MARKDOWN_CHARS = 200_000  # intro, outro, a section's body: twice what Gmail shows, ~1.5 s to render
MAX_TEXT_CHARS = 2_048        # every other field: titles, subject, links, image paths


@dataclass(frozen=True)
class Image:
    src: str
    alt: str
    href: str | None = None
    width: int | None = None
    dark_src: str | None = None  # shown instead of `src` by mail clients in dark mode


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class Section:
    title: str
    body: str  # Markdown
    image: Image | None = None
    cta: Link | None = None


@dataclass(frozen=True)
class Issue:
    """One newsletter issue, as written in its file."""

    path: Path
    slug: str
    subject: str
    preheader: str
    title: str
    date: dt.date
    intro: str
    sections: tuple[Section, ...]
    kicker: str | None = None
    header_image: Image | None = None
    outro: str = ""
    send_at: dt.datetime | None = None
    not_after: dt.datetime | None = None
    audience: tuple[str, ...] = ()
    template: str | None = None
    accept_warnings: tuple[str, ...] = ()  # pre-send check warnings this issue may go out with
    public: bool = False  # `digest publish` puts it in the archive before (or without) a send
    lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def line_of(self, dotted: str) -> int:
        """Line where a field was written (1 when unknown)."""
        return self.lines.get(dotted, 1)


# --- validation -------------------------------------------------------------------------------

class _Reader:
    """Reads fields out of a mapping node, naming file, line and field in every error."""

    def __init__(self, path: Path, node: Node, prefix: str, lines: dict[str, int], *, label: str = "",
                 shown: str | None = None):
        self.path, self.node, self.prefix, self.lines = path, node, prefix, lines
        # `prefix` keys `lines` (sections[3].cta.label); errors say "section 4 ('Title'): 'cta.label'"
        self.label, self.shown = label, prefix if shown is None else shown
        self.owner = (f"{label}: " if label and self.shown else label) + self.shown.rstrip(".") or "the issue"
        if not isinstance(node.value, dict):
            raise IssueError(f"{path}:{node.line}: {self.owner} must be a mapping of 'key: value' lines.")
        for key, line in node.key_lines.items():
            lines[prefix + key] = line

    def at(self, line: int) -> str:
        """'file:line: ' and, inside a section, 'section N ('Title'): '."""
        return f"{self.path}:{line}: " + (f"{self.label}: " if self.label else "")

    def name(self, key: str) -> str:
        """A field as the errors name it: 'title', 'cta.label', 'header_image.src'."""
        return self.shown + key

    def _where(self, key: str | None = None) -> str:
        line = self.node.key_lines.get(key, self.node.line) if key else self.node.line
        return f"{self.path}:{line}"

    def check_keys(self, allowed: tuple[str, ...]) -> None:
        for key in self.node.value:
            if key not in allowed:
                guess = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
                did = f" Did you mean '{guess[0]}'?" if guess else ""
                raise IssueError(f"{self.at(self.node.key_lines[key])}unknown field '{self.name(key)}'.{did}",
                                 f"allowed here: {', '.join(allowed)}")

    def raw(self, key: str) -> Node | None:
        return self.node.value.get(key)

    def text(self, key: str, *, required: bool = True, default: str = "", limit: int = MAX_TEXT_CHARS) -> str:
        node = self.raw(key)
        if node is None or node.value is None:
            if required:
                raise IssueError(f"{self._where()}: {self.owner} is missing the required field '{self.name(key)}'.",
                                 "see the README's 'Issue files' section")
            return default
        if not isinstance(node.value, str):
            raise IssueError(f"{self.at(node.line)}'{self.name(key)}' must be text, "
                             f"not a {'list' if isinstance(node.value, list) else 'mapping'}.")
        value = node.value.strip()
        if required and not value:
            raise IssueError(f"{self.at(node.line)}'{self.name(key)}' is empty.", "write something there")
        if len(value) > limit:
            raise IssueError(f"{self.at(node.line)}'{self.name(key)}' is {len(value):,} characters long; "
                             f"at most {limit:,}.", "shorten it, or link to the long version on the web")
        return value

    def markdown(self, key: str, *, required: bool = True) -> str:
        """A Markdown field: bounded in length and in how deep its lists and quotes nest."""
        from digest.compose.markdown import MAX_NESTING, too_deep

        value = self.text(key, required=required, limit=MAX_MARKDOWN_CHARS)
        offset = too_deep(value) if value else None
        if offset is not None:
            node = self.raw(key)
            lead = node.value.index(value[:1]) if node.value.strip() else 0  # blank lines strip() took
            line = node.line + node.value.count("\n", 0, lead) + offset + ("\n" in node.value)
            raise IssueError(f"{self.at(line)}'{self.name(key)}' nests lists or quotes more than "
                             f"{MAX_NESTING} levels deep.", "flatten the list: readers cannot follow that many levels")
        return value

    def parsed(self, key: str, parse: Callable[[str], Any], what: str, *, required: bool = False) -> Any:
        text = self.text(key, required=required)
        if not text:
            return None
        try:
            return parse(text)
        except ValueError as exc:
            raise IssueError(f"{self.at(self.node.key_lines[key])}'{self.name(key)}' = {text!r} "
                             f"is not {what} ({exc}).")

    def child(self, key: str, prefix: str, shown: str | None = None) -> "_Reader | None":
        node = self.raw(key)
        if node is None or node.value is None:
            return None
        return _Reader(self.path, node, prefix, self.lines, label=self.label, shown=shown)


ISSUE_KEYS = ("subject", "preheader", "title", "kicker", "date", "send_at", "not_after", "audience",
              "template", "header_image", "intro", "sections", "outro", "accept_warnings", "public")
IMAGE_KEYS = ("src", "alt", "href", "width", "dark_src")
SECTION_KEYS = ("title", "body", "image", "cta")
CTA_KEYS = ("label", "url")


def _yes_no(text: str) -> bool:
    """true/false (also yes/no): scalars stay strings here, so the flag is read by hand."""
    value = {"true": True, "yes": True, "false": False, "no": False}.get(text.lower())
    if value is None:
        raise ValueError("write true or false")
    return value


def _aware_datetime(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError("it has no time zone: add one, e.g. 2024-01-11T09:00+01:00 or …Z for UTC")
    return value


def _image(reader: _Reader | None) -> Image | None:
    if reader is None:
        return None
    reader.check_keys(IMAGE_KEYS)
    src = reader.text("src")
    alt_node = reader.raw("alt")
    if alt_node is None or alt_node.value is None or not str(alt_node.value).strip():
        raise IssueError(f"{reader.at(reader.node.line)}image '{src}' has no alt text ('{reader.name('alt')}').",
                         "describe the image in a few words; screen readers and image-blocking clients show it")
    width = reader.parsed("width", int, "a whole number of pixels")
    return Image(src=src, alt=reader.text("alt"), href=reader.text("href", required=False) or None, width=width,
                 dark_src=reader.text("dark_src", required=False) or None)


def _url(reader: _Reader, key: str) -> str:
    url = reader.text(key)
    if not re.match(r"^(https?://|mailto:)\S+$", url):
        raise IssueError(f"{reader.at(reader.node.key_lines[key])}'{reader.name(key)}' = {url!r} "
                         "is not a link.", "links start with https://, http:// or mailto:")
    return url


def load_issue(path: Path | str) -> Issue:
    """Read and validate one issue file."""
    path = Path(path)
    root = parse_issue_yaml(path)
    lines: dict[str, int] = {}
    top = _Reader(path, root, "", lines)
    top.check_keys(ISSUE_KEYS)
    slug = path.stem
    if not SLUG_RE.match(slug):
        raise IssueError(f"{path}: the file name '{slug}' must be lower-case letters, digits, '-', '.' or '_'.",
                         "rename the file; the name is the issue's slug in URLs and the ledger")
    sections = _sections(path, root, top, lines)
    send_at = top.parsed("send_at", _aware_datetime, "an ISO date-time with a time zone")
    not_after = top.parsed("not_after", _aware_datetime, "an ISO date-time with a time zone")
    if send_at and not_after and not_after <= send_at:
        raise IssueError(f"{path}:{lines['not_after']}: 'not_after' ({not_after.isoformat()}) must be later than "
                         f"'send_at' ({send_at.isoformat()}).")
    return Issue(
        path=path,
        slug=slug,
        subject=top.text("subject"),
        preheader=top.text("preheader", required=False),
        title=top.text("title"),
        kicker=top.text("kicker", required=False) or None,
        date=top.parsed("date", dt.date.fromisoformat, "a date like 2023-12-21", required=True),
        intro=top.markdown("intro", required=False),
        sections=sections,
        header_image=_image(top.child("header_image", "header_image.")),
        outro=top.markdown("outro", required=False),
        send_at=send_at,
        not_after=not_after,
        audience=_tag_list(path, top, "audience", "a tag or a list of tags"),
        accept_warnings=_tag_list(path, top, "accept_warnings", "a warning code or a list of them"),
        template=top.text("template", required=False) or None,
        public=bool(top.parsed("public", _yes_no, "true or false")),
        lines=lines,
    )


def _sections(path: Path, root: Node, top: _Reader, lines: dict[str, int]) -> tuple[Section, ...]:
    """The issue's sections, each with its title, body, optional image and call to action."""
    sections_node = top.raw("sections")
    if sections_node is None or sections_node.value is None:
        raise IssueError(f"{path}:{root.line}: the issue has no 'sections'.", "add at least one section")
    if not isinstance(sections_node.value, list) or not sections_node.value:
        raise IssueError(f"{path}:{sections_node.line}: 'sections' must be a list of sections "
                         "(each starting with '- title: …').")
    sections = []
    for i, node in enumerate(sections_node.value):
        sec = _Reader(path, node, f"sections[{i}].", lines, label=_section_label(i, node), shown="")
        sec.check_keys(SECTION_KEYS)
        title = sec.raw("title")
        if title is None or not isinstance(title.value, str) or not title.value.strip():
            raise IssueError(f"{path}:{node.line}: section {i + 1} has no title.", "every section needs a 'title'")
        cta_reader = sec.child("cta", f"sections[{i}].cta.", "cta.")
        cta = None
        if cta_reader is not None:
            cta_reader.check_keys(CTA_KEYS)
            cta = Link(label=cta_reader.text("label"), url=_url(cta_reader, "url"))
        sections.append(Section(title=sec.text("title"), body=sec.markdown("body"),
                                image=_image(sec.child("image", f"sections[{i}].image.", "image.")), cta=cta))
    return tuple(sections)


def _section_label(i: int, node: Node) -> str:
    """How errors name a section: as people count and title it, "section 4 ('Innovation Festival')"."""
    title = node.value.get("title") if isinstance(node.value, dict) else None
    if title is None or not isinstance(title.value, str) or not title.value.strip():
        return f"section {i + 1}"
    words = " ".join(title.value.split())
    return f"section {i + 1} ('{words[:40]}{'…' if len(words) > 40 else ''}')"


def _tag_list(path: Path, top: _Reader, key: str, what: str) -> tuple[str, ...]:
    """A field holding one word or a list of them (audience tags, warning codes), lower-cased."""
    node = top.raw(key)
    if node is None or node.value is None:
        return ()
    items = node.value if isinstance(node.value, list) else [node]
    words = []
    for item in items:
        if not isinstance(item.value, str) or not item.value.strip():
            raise IssueError(f"{path}:{item.line}: '{key}' must be {what}.")
        words.append(item.value.strip().lower())
    return tuple(words)


def issue_paths(settings: "Settings") -> list[Path]:
    """Every issue file in the issues folder, sorted by name."""
    folder = settings.path("issues")
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in ISSUE_SUFFIXES and p.is_file())


def find_issue(settings: "Settings", name: str) -> Path:
    """Resolve ISSUE on the command line: a path to a file, or a slug in the issues folder."""
    candidate = Path(name)
    if candidate.suffix in ISSUE_SUFFIXES or "/" in name:
        if candidate.is_file():
            return candidate
        raise IssueError(f"{name}: no such issue file.", "check the path")
    folder = settings.path("issues")
    for suffix in ISSUE_SUFFIXES:
        if (folder / f"{name}{suffix}").is_file():
            return folder / f"{name}{suffix}"
    slugs = [p.stem for p in issue_paths(settings)]
    guess = difflib.get_close_matches(name, slugs, n=1)
    did = f" Did you mean '{guess[0]}'?" if guess else ""
    raise IssueError(f"no issue '{name}' in {folder}.{did}",
                     f"issues there: {', '.join(slugs) or 'none'}; or give a path to an issue file")
