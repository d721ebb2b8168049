"""The render pipeline on the example issue: faithful content, inlined CSS, slots, escaping."""

from __future__ import annotations

import re

import lxml.html
import pytest

from digest.compose.issue import load_issue
from digest.compose.render import render_issue
from digest.compose.slots import SlotText, slot
from tests.helpers.project import DATA

SEED = DATA / "seed_issue.txt"
ISSUE = "issues/2023-12-learning-innovation-highlights.yaml"


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def seed_blocks() -> list[str]:
    """Every non-empty line of the real newsletter text (titles, paragraphs, list items)."""
    return [norm(line) for line in SEED.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
def rendered(settings):
    return render_issue(load_issue(settings.root / ISSUE), settings)


def html_text(html: str) -> str:
    return norm(lxml.html.fromstring(html).text_content())


def test_every_title_paragraph_and_list_item_of_the_seed_is_in_the_html(rendered):
    text = html_text(rendered.html.raw)
    blocks = seed_blocks()
    assert blocks[0] == "yellow shape"
    for block in blocks[1:]:
        block = re.sub(r"^\d+\. ", "", block)  # list numbers are <ol> markers in HTML
        if block == "21 December 2023":
            assert "21 December 2023" in text
            continue
        assert block in text, f"missing from HTML: {block[:60]}…"


def test_every_block_of_the_seed_is_in_the_plain_text(rendered):
    # Links keep their URL in the text part as "label (url)"; compare without the URLs.
    text = re.sub(r" \((https?://[^)]+)\)", "", norm(rendered.text.raw))
    for block in seed_blocks()[1:]:
        if block.upper() == block or block == "Learning & Innovation Highlights 2023":
            assert block.upper() in text or block in text
            continue
        assert block in text, f"missing from text: {block[:60]}…"
    assert "1. We created a Policy paper" in rendered.text.raw
    assert "5. Inclusive communication guide" in rendered.text.raw


def test_text_part_keeps_every_link_url(rendered):
    for url in ("https://example.org/innovation-hub/dei-learning-trajectory-2023",
                "https://example.org/innovation-hub/digital-maturity-quick-scan",
                "https://example.org/innovation-hub/innovation-festival-2023"):
        assert url in rendered.text.raw
        assert f'href="{url}"' in rendered.html.raw


def test_masthead_image_alt_text_and_every_image_has_alt(rendered):
    doc = lxml.html.fromstring(rendered.html.raw)
    images = doc.xpath("//img")
    assert images, "the masthead image is missing"
    assert images[0].get("alt") == "yellow shape"
    # published under a content-hashed name (digest publish puts the file there)
    assert re.fullmatch(r"https://example\.org/newsletter/images/yellow-shape\.[0-9a-f]{10}\.png", images[0].get("src"))
    assert all(img.get("alt") for img in images)


def test_styles_are_inlined_and_media_queries_survive(rendered):
    html = rendered.html.raw
    doc = lxml.html.fromstring(html)
    h2 = doc.xpath("//h2")[0]
    assert "font-size:21px" in h2.get("style").replace(" ", "")
    link = doc.xpath("//a[contains(@href, 'quick-scan')]")[0]
    assert "color:#1d5fa8" in link.get("style").replace(" ", "")
    assert "@media (prefers-color-scheme: dark)" in html
    assert "@media only screen and (min-width:480px)" in html
    assert "!important" in html
    assert "<!--[if mso" in html  # Outlook conditional comments kept


def test_responsive_and_accessible_basics(rendered):
    html = rendered.html.raw
    assert re.search(r'<html[^>]* lang="en"', html)
    assert '<meta name="color-scheme" content="light dark">' in html
    assert 'name="viewport"' in html
    assert "max-width:600px" in html.replace(" ", "")


def test_merge_slots_survive_the_render(rendered):
    assert rendered.fields >= {"unsubscribe_url", "web_version_url", "email"}
    assert f'href="{slot("unsubscribe_url")}"' in rendered.html.raw
    assert f'href="{slot("web_version_url")}"' in rendered.html.raw
    assert slot("unsubscribe_url") in rendered.text.raw


def test_slot_fill_escapes_html_values():
    text = SlotText(f'<p>Hi {slot("first_name")}</p><a href="{slot("url")}">x</a>')
    import html

    out = text.fill({"first_name": "<script>alert(1)</script> & co", "url": 'https://x.org/?a=1&b="2"'},
                    lambda v: html.escape(v, quote=True))
    assert out == ('<p>Hi &lt;script&gt;alert(1)&lt;/script&gt; &amp; co</p>'
                   '<a href="https://x.org/?a=1&amp;b=&quot;2&quot;">x</a>')
    assert SlotText("no slots").fill({}) == "no slots"


def test_script_and_ampersand_in_content_are_escaped(settings, project):
    path = project / "issues" / "escape-test.yaml"
    path.write_text(
        'subject: "Tom & Jerry <script>"\ntitle: "A & B <script>alert(1)</script>"\ndate: 2024-01-01\n'
        "intro: |\n  Dear {{ first_name }}, R&D <script>alert(2)</script> costs $480,000.\n"
        "sections:\n  - title: \"<b>bold</b> & more\"\n    body: 'x'\n",
        encoding="utf-8",
    )
    r = render_issue(load_issue(path), settings)
    html = r.html.raw
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "A &amp; B" in html
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; more" in html
    assert "$480,000" in html
    assert "first_name" in r.fields
    assert r.subject.raw == "Tom & Jerry <script>"  # the subject is a header: raw text, not HTML
    assert "<title>Tom &amp; Jerry &lt;script&gt;</title>" in html


def test_merge_field_inside_a_markdown_link_survives(settings, project):
    path = project / "issues" / "link-slot.yaml"
    path.write_text(
        "subject: s\ntitle: t\ndate: 2024-01-01\nintro: '[profile](https://x.example.org/p?e={{ email }})'\n"
        "sections:\n  - title: a\n    body: b\n", encoding="utf-8")
    r = render_issue(load_issue(path), settings)
    assert f'href="https://x.example.org/p?e={slot("email")}"' in r.html.raw
    assert f"(https://x.example.org/p?e={slot('email')})" in r.text.raw


def test_render_is_deterministic(settings):
    issue = load_issue(settings.root / ISSUE)
    assert render_issue(issue, settings).fingerprint == render_issue(issue, settings).fingerprint


def test_logo_setting_puts_the_logo_in_the_masthead(project):
    from digest.config import load_settings

    toml = project / "digest.toml"
    toml.write_text(toml.read_text().replace('language = "en"', 'language = "en"\nlogo = "https://example.org/logo.png"'))
    settings = load_settings(toml)
    html = render_issue(load_issue(project / ISSUE), settings).html.raw
    doc = lxml.html.fromstring(html)
    logo = doc.xpath("//img[@src='https://example.org/logo.png']")
    assert len(logo) == 1 and logo[0].get("alt") == "Innovation Hub News"
