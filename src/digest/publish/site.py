"""`digest publish`: write the archive as a new generation folder, then swap it in with one rename.

The site folder (out/site) is a symbolic link to the generation being served (out/.site-<stamp>):
publish builds the next generation beside it and replaces the link atomically, so a reader (or the
app, or an upload running at that moment) sees the old site or the new one, never half of each. The
previous generation is kept until the next run, for requests that were already reading it.

Incremental: each issue's files carry a fingerprint of everything that shapes them (issue file,
templates, images, settings, digest's version). An unchanged issue is linked over from the previous
generation instead of rendered again.

Nothing personal is published: pages are the web version (merge fields at their defaults, the
generic unsubscribe page), never a message; no address, no token, no .eml.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from digest import __version__
from digest.clock import iso_stamp, parse_stamp, utc_now
from digest.filemodes import make_public_tree
from digest.publish.feed import Entry, feed_xml, index_html
from digest.publish.layout import Layout, layout_for, site_dir

if TYPE_CHECKING:  # pragma: no cover
    from digest.compose.issue import Issue
    from digest.config import Settings
    from digest.status import IssueStatus

MANIFEST = ".digest-publish.json"  # dot-named: the app never serves it
GENERATION_PREFIX = ".site-"
_STAND_IN = "https://digest-publish.invalid/assets/"


@dataclass
class PublishResult:
    """What a publish wrote: the site folder, the issues on it, how many were rendered anew."""

    folder: Path
    generation: Path
    issues: list[str] = field(default_factory=list)   # slugs, newest first
    rendered: list[str] = field(default_factory=list)  # slugs rendered in this run (the rest reused)
    files: int = 0


def publish_site(settings: "Settings", out: Path | None = None) -> PublishResult:
    """Publish every sent or public issue to `out` (default out/site): pages, images, index, feed."""
    from digest.status import issue_statuses

    layout = layout_for(settings)
    target = Path(out) if out else site_dir(settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    previous = _current_generation(target)
    old = _read_manifest(previous)
    old_manifest = old.get("issues", {})
    staging = Path(tempfile.mkdtemp(prefix=GENERATION_PREFIX + "new-", dir=target.parent))
    result = PublishResult(folder=target, generation=staging)
    try:
        chosen = [s for s in issue_statuses(settings, utc_now()) if _published(s)]
        chosen.sort(key=lambda s: (_date_of(s), s.slug), reverse=True)
        templates = _templates_print(settings)
        manifest: dict[str, dict] = {}
        entries = []
        for status in chosen:
            entry, files = _issue_files(settings, layout, status, templates, previous, old_manifest, staging)
            if entry.rendered:
                result.rendered.append(status.slug)
            manifest[status.slug] = {"fingerprint": entry.fingerprint, "files": files,
                                     "meta": {"title": entry.title, "summary": entry.summary}}
            entries.append(entry)
            result.issues.append(status.slug)
        (staging / "index.html").write_text(index_html(settings, layout, entries), encoding="utf-8")
        (staging / "feed.xml").write_bytes(feed_xml(settings, layout, entries))
        kept = _keep_old_images(previous, staging, old, manifest)
        (staging / MANIFEST).write_text(json.dumps({"issues": manifest, "kept": kept}, indent=1, sort_keys=True),
                                        encoding="utf-8")
        make_public_tree(staging)
        result.files = sum(1 for p in staging.rglob("*") if p.is_file())
        result.generation = _swap_in(target, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _prune(target, keep={result.generation, previous})
    return result


def _published(status: "IssueStatus") -> bool:
    """Sent to anyone (its readers hold the link), or marked `public: true` in its file."""
    return status.issue is not None and (status.sent > 0 or status.issue.public)


def _date_of(status: "IssueStatus") -> str:
    """When the issue went out (the send's start), else its own date: the archive's order."""
    started = parse_stamp(status.send.started_at) if status.send is not None else None
    return iso_stamp(started) if started else status.issue.date.isoformat()  # type: ignore[union-attr]


def _issue_files(settings, layout: Layout, status: "IssueStatus", templates: str, previous: Path | None,
                 old_manifest: dict, staging: Path) -> tuple[Entry, list[str]]:
    """Write one issue's page and images into the staging folder: linked from the last run when unchanged."""
    issue = status.issue
    fingerprint = _fingerprint(settings, issue, templates, _date_of(status))
    old = old_manifest.get(issue.slug)
    if previous is not None and old and old.get("fingerprint") == fingerprint and _reuse(previous, staging, old["files"]):
        page = (staging / layout.page_path(issue.slug)).read_text(encoding="utf-8")
        meta = old.get("meta") or {}
        entry = Entry(issue.slug, layout.page_url(issue.slug), meta.get("title", issue.title),
                      meta.get("summary", ""), _date_of(status), page, fingerprint, rendered=False)
        return entry, old["files"]
    return _render(settings, layout, issue, _date_of(status), fingerprint, staging)


def _render(settings, layout: Layout, issue: "Issue", when: str, fingerprint: str,
            staging: Path) -> tuple[Entry, list[str]]:
    """Render the issue's web version with its images at their published (content-hashed) names."""
    import dataclasses

    from digest.audience.tokens import KeyRing
    from digest.compose.render import render_issue
    from digest.compose.slots import SlotText
    from digest.delivery.personalize import Personalizer

    # Rendered against a stand-in absolute base (URL joining needs one), then made relative to the
    # page, so the archive works on any host and under any prefix.
    rendered = render_issue(issue, settings, asset_base=_STAND_IN, web=True, hashed_assets=True)
    # The development key: web_version() signs nothing (the page links the generic unsubscribe page).
    signer = KeyRing.for_settings(settings, allow_dev_key=True, env={})
    html, _ = Personalizer(rendered, settings, signer).web_version()
    html = html.replace(f'"{_STAND_IN}', f'"{layout.asset_base(issue.slug)}')
    # Subject and preheader with the merge fields' defaults, as the page shows them.
    plain = dataclasses.replace(rendered, html=SlotText(""), text=SlotText(rendered.subject.raw + "\0" +
                                                                        rendered.preheader.raw))
    title, summary = Personalizer(plain, settings, signer).web_version()[1].split("\0", 1)
    page_path = layout.page_path(issue.slug)
    _write(staging / page_path, html.encode("utf-8"))
    files = [page_path]
    for src, name in rendered.published.items():
        rel = layout.assets_path + name
        _write(staging / rel, (issue.path.parent / src).read_bytes())
        files.append(rel)
    entry = Entry(issue.slug, layout.page_url(issue.slug), title.strip(), summary.strip(), when, html,
                  fingerprint, rendered=True)
    return entry, files


def _keep_old_images(previous: Path | None, staging: Path, old: dict, manifest: dict) -> list[str]:
    """Images published before and no longer used (an issue's image file was replaced): kept, because
    emails already delivered load them by their content-hashed names."""
    if previous is None:
        return []
    pages = {files[0] for files in (v["files"] for v in manifest.values())}
    before = set(old.get("kept", []))
    for entry in old.get("issues", {}).values():
        before.update(entry.get("files", [])[1:])  # the first file is the page, the rest its images
    kept = sorted(rel for rel in before if rel not in pages and not (staging / rel).exists())
    _reuse(previous, staging, [rel for rel in kept if (previous / rel).is_file()])
    return [rel for rel in kept if (staging / rel).is_file()]


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _reuse(previous: Path, staging: Path, files: list[str]) -> bool:
    """Hard-link (else copy) an issue's files from the previous generation; False if one is missing."""
    for rel in files:
        src, dest = previous / rel, staging / rel
        if not src.is_file():
            return False
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():  # an image two issues share
            continue
        try:
            os.link(src, dest)
        except OSError:
            shutil.copy2(src, dest)
    return True


def _fingerprint(settings: "Settings", issue: "Issue", templates: str, when: str) -> str:
    """Everything that shapes an issue's published files, hashed."""
    h = hashlib.sha256(f"{__version__}\0{templates}\0{when}\0".encode())
    h.update(repr((settings.newsletter, settings.colors, settings.unsubscribe, settings.merge)).encode())
    h.update(issue.path.read_bytes())
    for img in [issue.header_image, *(s.image for s in issue.sections)]:
        for src in (img.src, img.dark_src) if img is not None else ():
            path = issue.path.parent / src if src else None
            if path is not None and path.is_file():
                h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _templates_print(settings: "Settings") -> str:
    """A hash of every template file (any change re-renders every issue)."""
    h = hashlib.sha256()
    folder = settings.path("templates")
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _current_generation(target: Path) -> Path | None:
    """The generation the site link points at (a plain folder from before counts as one)."""
    if target.is_symlink():
        resolved = target.resolve()
        return resolved if resolved.is_dir() else None
    return target if target.is_dir() else None


def _read_manifest(generation: Path | None) -> dict:
    if generation is None:
        return {}
    try:
        return json.loads((generation / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _swap_in(target: Path, staging: Path) -> Path:
    """Point the site link at the new generation in one rename; returns the generation's folder."""
    generation = staging.with_name(f"{GENERATION_PREFIX}{utc_now():%Y%m%dT%H%M%S%f}")
    os.replace(staging, generation)
    link = target.with_name(f".{target.name}.link-{os.getpid()}")
    link.unlink(missing_ok=True)
    os.symlink(generation.name, link)  # relative: the output folder can move
    if target.is_dir() and not target.is_symlink():
        # A plain folder (an earlier layout): moved aside once; from now on the swap is one rename.
        os.replace(target, target.with_name(f"{GENERATION_PREFIX}{utc_now():%Y%m%dT%H%M%S}-old"))
    os.replace(link, target)
    return generation


def _prune(target: Path, keep: set) -> None:
    """Remove generations older than the previous one (they are no longer served)."""
    keep = {p.resolve() for p in keep if p is not None}
    for path in target.parent.glob(f"{GENERATION_PREFIX}*"):
        if path.is_dir() and not path.is_symlink() and path.resolve() not in keep:
            shutil.rmtree(path, ignore_errors=True)
