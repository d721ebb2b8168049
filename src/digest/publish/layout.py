"""Where things are published: the archive's root URL and the path below it of each page and image.

Everything follows from two settings the emails already carry: `[unsubscribe] web_version_url` (the
"View in your browser" link: `https://example.org/newsletter/{slug}/`) and `[newsletter] assets_url`
(where the images are loaded from). The archive's root is the folder of web_version_url before
`{slug}`; the images must be published under it, so the email's image URLs are the archive's files.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from digest.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings

SITE_FOLDER = "site"  # in [paths] output: out/site (a link to the generation being served)


def site_dir(settings: "Settings") -> Path:
    """Where `digest publish` writes by default and `digest serve` serves from: out/site."""
    return settings.path("output") / SITE_FOLDER


@dataclass(frozen=True)
class Layout:
    """The archive's URLs and the matching paths in the site folder."""

    root_url: str        # https://example.org/newsletter/
    page_pattern: str    # '{slug}/' or '{slug}.html': below the root
    assets_path: str     # '' or 'assets/': the images' folder below the root

    def page_url(self, slug: str) -> str:
        """The issue's web version URL, as its emails link it."""
        return self.root_url + self.page_pattern.format(slug=slug)

    def page_path(self, slug: str) -> str:
        """The file of the issue's web version, relative to the site folder."""
        rel = self.page_pattern.format(slug=slug)
        return rel + "index.html" if not rel or rel.endswith("/") else rel

    def asset_base(self, slug: str) -> str:
        """The images' folder as a link relative to the page (the archive works on any host)."""
        page_dir = posixpath.dirname(self.page_path(slug)) or "."
        rel = posixpath.relpath(self.assets_path or ".", page_dir)
        return "" if rel == "." else rel + "/"


def layout_for(settings: "Settings") -> Layout:
    """The layout from web_version_url and assets_url; ConfigError when the two do not fit together."""
    web = settings.unsubscribe.web_version_url
    where = settings.where("unsubscribe")
    if "{slug}" not in web:
        raise ConfigError(f"{where} web_version_url = {web!r} has no {{slug}}: every issue needs its own page.",
                          'write it as e.g. "https://example.org/newsletter/{slug}/"')
    prefix = web.split("{slug}", 1)[0]
    page_dir = prefix[: prefix.rfind("/") + 1]
    if not urlparse(page_dir).scheme or "{" in web.split("{slug}", 1)[1] or ".." in web:
        raise ConfigError(f"{where} web_version_url = {web!r} is not an absolute URL with one {{slug}}.",
                          'write it as e.g. "https://example.org/newsletter/{slug}/"')
    assets = settings.newsletter.assets_url
    assets_dir = assets[: assets.rfind("/") + 1]
    root = _common_folder(page_dir, assets_dir)
    if urlparse(root).path in ("", "/") and urlparse(root).netloc != urlparse(page_dir).netloc:
        raise ConfigError(
            f"{settings.where('newsletter')} assets_url = {assets!r} is on another site than web_version_url "
            f"({page_dir}): digest publish puts the images beside the pages, so the emails' image URLs must "
            "point into the archive.", f'set assets_url = "{page_dir}" (or a folder on the same site)')
    return Layout(root_url=root, page_pattern=web[len(root):], assets_path=assets_dir[len(root):])


def _common_folder(a: str, b: str) -> str:
    """The longest folder URL (ending in '/') both URLs are in; '' when they are on different sites."""
    common = posixpath.commonprefix([a, b])
    common = common[: common.rfind("/") + 1]
    parsed = urlparse(common)
    return common if parsed.scheme and parsed.path.startswith("/") else ""
