"""`digest publish`: the archive of sent and public issues, its images, index and Atom feed; nothing personal."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import feedparser
import pytest

from digest.compose.issue import load_issue
from digest.compose.render import render_issue
from digest.errors import ConfigError, IssueError
from digest.publish.site import publish_site
from tests.helpers.project import EXAMPLE_ISSUE
from tests.helpers.send import KEYS, run
from tests.helpers.web import request, running_server

PAGE = f"{EXAMPLE_ISSUE}/index.html"


def make_public(project: Path, slug: str = EXAMPLE_ISSUE) -> Path:
    path = project / "issues" / f"{slug}.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "public: true\n", encoding="utf-8")
    return path


def send_example(capsys, monkeypatch) -> None:
    """A real send of the example issue to the example list through the outbox."""
    monkeypatch.setenv("DIGEST_UNSUBSCRIBE_KEYS", KEYS)
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes")
    assert code == 0, out + err


def files_of(site: Path) -> dict[str, bytes]:
    return {p.relative_to(site).as_posix(): p.read_bytes() for p in site.rglob("*") if p.is_file()}


def test_only_sent_or_public_issues_are_published(project, settings):
    result = publish_site(settings)
    assert result.issues == [] and "No issues yet." in (result.folder / "index.html").read_text()
    make_public(project)
    result = publish_site(settings)
    assert result.issues == [EXAMPLE_ISSUE]
    assert (result.folder / PAGE).is_file()


def test_the_public_field_is_true_or_false(project):
    path = make_public(project)
    assert load_issue(path).public is True
    path.write_text(path.read_text(encoding="utf-8").replace("public: true", "public: maybe"), encoding="utf-8")
    with pytest.raises(IssueError, match="'public' = 'maybe' is not true or false"):
        load_issue(path)


def greet_by_name(project: Path) -> None:
    """The intro starts with the reader's first name (the example list has the column; the default is 'friend')."""
    path = project / "issues" / f"{EXAMPLE_ISSUE}.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("intro: |\n  ", "intro: |\n  Dear {{ first_name }}, ", 1),
                    encoding="utf-8")


def test_a_sent_issue_is_published_where_its_email_links_and_loads_images(project, settings, capsys, monkeypatch):
    greet_by_name(project)
    send_example(capsys, monkeypatch)
    result = publish_site(settings)
    assert result.issues == [EXAMPLE_ISSUE]
    email = render_issue(load_issue(project / "issues" / f"{EXAMPLE_ISSUE}.yaml"), settings).html.raw
    root = "https://example.org/newsletter/"  # the folder of web_version_url
    image_urls = set(re.findall(r'src="(https://example\.org/newsletter/[^"]+)"', email))
    assert image_urls, "the email loads no image from assets_url"
    for url in image_urls:
        published = result.folder / url[len(root):]
        assert published.is_file(), url
        assert published.read_bytes() == (project / "issues" / "images" / "yellow-shape.png").read_bytes()
    page = (result.folder / PAGE).read_text(encoding="utf-8")
    # The web version loads the same files, relative to itself (the archive works on any host).
    for url in image_urls:
        assert f'src="../{url[len(root):]}"' in page
    assert "Dear friend," in page and "%%DIGEST" not in page  # merge fields show their defaults


def test_two_issues_images_of_one_name_never_collide_and_old_ones_stay(project, settings):
    make_public(project)
    image = project / "issues" / "images" / "yellow-shape.png"
    first = publish_site(settings)
    old_names = {n for n in files_of(first.folder) if n.startswith("images/")}
    # The next issue's header has the same name with other bytes.
    second = project / "issues" / "2024-01-next.yaml"
    shutil.copy(project / "issues" / f"{EXAMPLE_ISSUE}.yaml", second)
    image.write_bytes(image.read_bytes() + b"\0changed")
    result = publish_site(settings)
    names = {n for n in files_of(result.folder) if n.startswith("images/")}
    assert len(names) == 2 and old_names < names  # the first emails' image is still there


def test_the_feed_parses_and_carries_every_issue_in_full(project, settings):
    make_public(project)
    result = publish_site(settings)
    feed = feedparser.parse((result.folder / "feed.xml").read_bytes())
    assert not feed.bozo, feed.bozo_exception
    assert feed.feed.title == "Innovation Hub News" and feed.version == "atom10"
    (entry,) = feed.entries
    assert entry.link == f"https://example.org/newsletter/{EXAMPLE_ISSUE}/"
    issue = load_issue(project / "issues" / f"{EXAMPLE_ISSUE}.yaml")
    assert entry.title == issue.subject.replace("{{ first_name }}", "friend")
    content = entry.content[0].value
    for section in issue.sections:
        assert section.title.split(":")[0] in content
    index = (result.folder / "index.html").read_text(encoding="utf-8")
    assert f'href="{EXAMPLE_ISSUE}/"' in index and 'href="feed.xml"' in index


def test_nothing_personal_is_published(project, settings, capsys, monkeypatch):
    from digest.audience.subscribers import read_subscribers

    greet_by_name(project)
    send_example(capsys, monkeypatch)
    result = publish_site(settings)
    readers = [s.email for s in read_subscribers(settings.path("subscribers"))]
    assert readers
    everything = files_of(result.folder)
    assert not [n for n in everything if n.endswith(".eml")]
    blob = b"\n".join(everything.values()).lower()
    for email in readers:
        assert email.lower().encode() not in blob, email
    assert b"token=" not in blob and KEYS.split(":")[0].encode() + b"." not in blob


def test_republishing_is_incremental_and_swaps_the_site_in_one_go(project, settings):
    make_public(project)
    first = publish_site(settings)
    assert first.rendered == [EXAMPLE_ISSUE] and first.folder.is_symlink()
    old_generation = first.folder.resolve()
    second = publish_site(settings)
    assert second.rendered == [] and second.issues == [EXAMPLE_ISSUE]
    assert second.folder.resolve() != old_generation
    assert (old_generation / PAGE).is_file()  # a reader of the previous generation still finishes
    third = publish_site(settings)
    assert not old_generation.exists()  # two back: pruned
    path = project / "issues" / f"{EXAMPLE_ISSUE}.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    assert publish_site(settings).rendered == [EXAMPLE_ISSUE]
    assert third.folder == second.folder


def test_assets_url_on_another_site_is_refused(project):
    from digest.config import load_settings

    toml = project / "digest.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace(
        'assets_url = "https://example.org/newsletter/"', 'assets_url = "https://cdn.example.net/img/"'), encoding="utf-8")
    with pytest.raises(ConfigError, match="on another site than web_version_url"):
        publish_site(load_settings(toml))


def test_the_app_serves_the_archive(project, settings, monkeypatch):
    make_public(project)
    publish_site(settings)
    with running_server(settings, monkeypatch) as srv:
        assert request(f"{srv.url}/")[0] == 200
        status, headers, body = request(f"{srv.url}/{EXAMPLE_ISSUE}/")
        assert status == 200 and headers["content-type"].startswith("text/html")
        image = re.search(r'src="\.\./(images/[^"]+)"', body).group(1)
        status, headers, _ = request(f"{srv.url}/{image}")
        assert status == 200 and headers["content-type"] == "image/png" and "max-age=31536000" in headers["cache-control"]
        status, headers, _ = request(f"{srv.url}/feed.xml")
        assert status == 200
        status, headers, _ = request(f"{srv.url}/{EXAMPLE_ISSUE}")
        assert status == 308 and headers["location"] == f"{EXAMPLE_ISSUE}/"
        for path in ("/.digest-publish.json", "/../digest.toml", "/%2e%2e/digest.toml", "/nothing-here"):
            assert request(f"{srv.url}{path}")[0] == 404, path
