"""`digest build`: render an issue; write its web version (index.html, index.txt, its images) to
out/<slug>/ and a sample reader's message to out/<slug>.eml, each atomically."""

from __future__ import annotations

import hashlib
import html
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from digest.audience.lookup import pick_subscriber
from digest.audience.tokens import KeyRing
from digest.compose.issue import load_issue
from digest.compose.render import GMAIL_CLIP_BYTES, asset_url, render_issue
from digest.filemodes import PRIVATE_FILE, make_public_tree

_URL = re.compile(r"^[a-z][a-z0-9+.-]*:|^//", re.I)

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings


@dataclass
class BuildResult:
    folder: Path
    files: list[Path]
    html_bytes: int
    recipient: str
    warnings: list[str] = field(default_factory=list)
    message: Path | None = None   # out/<slug>.eml: beside the web version, never in it
    sample: bool = False          # message.eml is a made-up reader's (no --as)

    @property
    def clipped(self) -> bool:
        return self.html_bytes > GMAIL_CLIP_BYTES


def _write_atomically(target: Path, files: dict[str, bytes], assets: dict[str, Path]) -> list[Path]:
    """Write every file into a temporary sibling folder, then swap it into place in one rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for name, data in files.items():
            (staging / name).write_bytes(data)
        for rel, src in assets.items():
            dest = staging / rel
            if not dest.resolve().is_relative_to(staging.resolve()):  # _web_assets never asks for it
                raise ValueError(f"{rel}: outside the issue's output")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
        make_public_tree(staging)  # the web version is for a web server: 0755/0644, whatever the umask
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(staging, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [target / name for name in files]


def _write_private(target: Path, data: bytes) -> Path:
    """Write a 0600 file beside its target, then rename it into place."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)  # mkstemp: 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, PRIVATE_FILE)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _web_assets(issue) -> tuple[dict[str, Path], dict[str, str]]:
    """(place in the output → file, src as written → its place) for the images named by a path.

    An image in the issue's folder keeps its place (images/x.png); one from outside it
    (../shared/logo.png, an absolute path) goes to shared/ in the issue's output, so nothing is
    ever written outside out/<slug>."""
    home = issue.path.parent.resolve()
    files: dict[str, Path] = {}
    moved: dict[str, str] = {}
    for image in [issue.header_image, *(s.image for s in issue.sections)]:
        for src in ((image.src, getattr(image, "dark_src", None)) if image else ()):
            if not src or _URL.match(src):
                continue
            path = (issue.path.parent / src).resolve()
            if path.is_relative_to(home):
                files[path.relative_to(home).as_posix()] = path
            else:
                moved[src] = f"shared/{hashlib.sha256(str(path).encode()).hexdigest()[:8]}-{path.name}"
                files[moved[src]] = path
    return files, moved


def _relink(page: str, moved: dict[str, str]) -> str:
    """The web version's image URLs for the images that moved into shared/."""
    for src, place in moved.items():
        page = page.replace(f'"{html.escape(asset_url(src, ""), quote=True)}"', f'"{html.escape(place, quote=True)}"')
    return page


def build_issue(settings: "Settings", issue_path: Path, *, out_dir: Path | None = None,
                as_email: str | None = None, list_path: Path | None = None) -> BuildResult:
    """Render an issue; write its web version (html, text, images) and a sample reader's message (or --as's)."""
    from digest.delivery.mime import build_mime
    from digest.delivery.personalize import Personalizer

    issue = load_issue(issue_path)
    rendered = render_issue(issue, settings)                    # the email: images on assets_url
    web_rendered = render_issue(issue, settings, asset_base="", web=True)  # the web version: images beside it
    warnings = []
    if not os.environ.get(settings.unsubscribe.keys_env):
        warnings.append(f"{settings.unsubscribe.keys_env} is not set: unsubscribe links in message.eml are "
                        "signed with the development key (fine for a look, refused for a real send).")
    signer = KeyRing.for_settings(settings, allow_dev_key=True)
    # Not the list's first reader: the file is a look at the message, and a real reader's address and
    # working unsubscribe link have no business in a build folder. --as asks for one on purpose.
    subscriber, source = pick_subscriber(settings, as_email, list_path) if as_email else (None, None)
    personalizer = Personalizer(rendered, settings, signer, source=source)
    subscriber = subscriber or personalizer.sample_reader()
    message = personalizer.message_for(subscriber, recipient_id=0)
    mime = build_mime(message)
    web_html, web_text = Personalizer(web_rendered, settings, signer).web_version()
    assets, moved = _web_assets(issue)
    folder = (out_dir or settings.path("output")) / issue.slug
    files = _write_atomically(folder, {
        "index.html": _relink(web_html, moved).encode("utf-8"),
        "index.txt": web_text.encode("utf-8"),
    }, assets)
    eml = _write_private(folder.with_name(f"{issue.slug}.eml"), mime)
    size = len(message.html.encode("utf-8"))
    if size > GMAIL_CLIP_BYTES:
        warnings.append(f"the HTML is {size / 1024:.0f} KB: Gmail clips messages over ~102 KB "
                        "(the rest, unsubscribe link included, hides behind 'View entire message').")
    return BuildResult(folder=folder, files=[*files, eml], html_bytes=size, recipient=subscriber.email,
                       warnings=warnings, message=eml, sample=as_email is None)
