"""`digest build`: render an issue and write index.html, index.txt and message.eml atomically."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from digest.audience.lookup import pick_subscriber
from digest.audience.tokens import KeyRing
from digest.compose.issue import load_issue
from digest.compose.render import GMAIL_CLIP_BYTES, render_issue

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings


@dataclass
class BuildResult:
    folder: Path
    files: list[Path]
    html_bytes: int
    recipient: str
    warnings: list[str] = field(default_factory=list)

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
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
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


def build_issue(settings: "Settings", issue_path: Path, *, out_dir: Path | None = None,
                as_email: str | None = None, list_path: Path | None = None) -> BuildResult:
    """Render an issue; write its web version (html + text) and one subscriber's message.eml."""
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
    subscriber, source = pick_subscriber(settings, as_email, list_path)
    personalizer = Personalizer(rendered, settings, signer, source=source)
    message = personalizer.message_for(subscriber, recipient_id=0)
    mime = build_mime(message)
    web_html, web_text = Personalizer(web_rendered, settings, signer).web_version()
    assets = {os.path.relpath(a, issue.path.parent.resolve()): a for a in rendered.assets}
    folder = (out_dir or settings.path("output")) / issue.slug
    files = _write_atomically(folder, {
        "index.html": web_html.encode("utf-8"),
        "index.txt": web_text.encode("utf-8"),
        "message.eml": mime,
    }, assets)
    size = len(message.html.encode("utf-8"))
    if size > GMAIL_CLIP_BYTES:
        warnings.append(f"the HTML is {size / 1024:.0f} KB: Gmail clips messages over ~102 KB "
                        "(the rest, unsubscribe link included, hides behind 'View entire message').")
    return BuildResult(folder=folder, files=files, html_bytes=size, recipient=subscriber.email, warnings=warnings)
