"""The final HTML and text of the example issue, as Outlook, Apple Mail, iOS and inbox previews need them.

These pin the numbers on the output (after MJML and premailer), not on the templates: premailer and
mjml-python each changed widths that the templates had right.
"""

from __future__ import annotations

import re
import struct

import pytest

from digest.compose.issue import load_issue
from digest.compose.render import render_issue
from tests.helpers.project import EXAMPLE_ISSUE


@pytest.fixture
def rendered(project, settings):
    return render_issue(load_issue(project / "issues" / f"{EXAMPLE_ISSUE}.yaml"), settings)


def images(html: str) -> list[str]:
    return re.findall(r"<img\b[^>]*>", html)


def test_every_image_keeps_pixel_width_and_height_attributes(project, rendered):
    [masthead] = images(rendered.html.raw)
    # The PNG is 1200×300; the email shows it 600 px wide: Outlook for Windows needs both in pixels.
    png = (project / "issues" / "images" / "yellow-shape.png").read_bytes()
    assert struct.unpack(">II", png[16:24]) == (1200, 300)
    assert ' width="600"' in masthead and ' height="150"' in masthead
    assert "width:100%" in masthead and "height:auto" in masthead  # still fluid where CSS works


def test_outlook_divider_tables_are_as_wide_as_npm_mjml_makes_them(rendered):
    # npm MJML 4.18: 600 px body − 2 × 28 px padding = 544 px; mjml-python read "0 28px" as 600.
    widths = re.findall(r'<table[^>]*width="(\d+)px" style="border-top:solid 1px #e6e1d6', rendered.html.raw)
    assert widths == ["544"] * 7


def test_doctype_apple_metas_and_color_scheme(rendered):
    html = rendered.html.raw
    assert html.startswith("<!doctype html><html lang=\"en\"")
    head = html[:html.index("</head>")]
    assert '<meta name="x-apple-disable-message-reformatting">' in head
    assert '<meta name="format-detection" content="telephone=no, date=no, address=no, email=no, url=no">' in head
    assert head.count('<meta name="color-scheme" content="light dark">') == 1


def test_the_preheader_is_followed_by_filler_so_the_inbox_preview_stops_there(rendered):
    html = rendered.html.raw
    start = html.index("It was a year full of inspiring connections")
    hidden = html[start:html.index("</div>", start)]
    assert hidden.count("\u034f\u200c\u00a0") == 60  # &#847;&zwnj;&nbsp;, as the HTML parser wrote them


def test_the_text_part_is_wrapped_at_72_columns_footer_included(rendered):
    lines = rendered.text.raw.splitlines()
    assert max(len(line) for line in lines) <= 72
    footer = rendered.text.raw[rendered.text.raw.rindex("-" * 72):]
    assert "Innovation Hub News · Partos, Ellermanstraat 18B, 1114 AK Amsterdam, The\nNetherlands" in footer


def test_the_web_version_footer_reads_as_a_web_page(project, settings):
    web = render_issue(load_issue(project / "issues" / f"{EXAMPLE_ISSUE}.yaml"), settings, web=True)
    assert "This email was sent to" not in web.html.raw and "This email was sent to" not in web.text.raw
    assert "View in your browser" not in web.html.raw  # it would link to itself
    assert "You are reading the web version of Innovation Hub News" in web.html.raw
    assert "You are reading the web version of Innovation Hub News." in web.text.raw


def test_in_dark_mode_the_masthead_is_dimmed_or_swapped_for_its_dark_variant(project, settings, rendered):
    html = rendered.html.raw
    assert re.search(r"@media \(prefers-color-scheme: dark\)[^@]*\.dm-dim img \{ opacity: 0\.82 !important; \}", html)
    # The class sits on the cell that holds the masthead image.
    assert re.search(r'<td[^>]*class="dm-dim"[^>]*>(?:(?!</td>).)*?<img[^>]*yellow-shape\.[0-9a-f]{10}\.png', html, re.S)
    # With a dark variant: both images, the dark one hidden until a dark-mode client shows it.
    path = project / "issues" / f"{EXAMPLE_ISSUE}.yaml"
    (project / "issues" / "images" / "yellow-shape-dark.png").write_bytes(
        (project / "issues" / "images" / "yellow-shape.png").read_bytes())
    path.write_text(path.read_text(encoding="utf-8").replace(
        "  alt: yellow shape\n", "  alt: yellow shape\n  dark_src: images/yellow-shape-dark.png\n", 1), encoding="utf-8")
    swapped = render_issue(load_issue(path), settings).html.raw
    tags = images(swapped)
    assert len(tags) == 2 and re.search(r"yellow-shape-dark\.[0-9a-f]{10}\.png", tags[1])
    assert ' height="150"' in tags[1]
    assert "dm-light-img" in swapped and "dm-dark-img" in swapped
    assert ".dm-dark-img { display: none; mso-hide: all; max-height: 0; overflow: hidden; }" in swapped


def test_empty_optional_settings_leave_no_dangling_words(project):
    from digest.config import load_settings

    toml = project / "digest.toml"
    text = toml.read_text(encoding="utf-8")
    text = re.sub(r'postal_address = "[^"]*"', 'postal_address = ""', text)
    text = re.sub(r'why = "[^"]*"', 'why = ""', text)
    text = re.sub(r'website = "[^"]*"', 'website = ""', text)
    toml.write_text(text, encoding="utf-8")
    settings = load_settings(toml)
    out = render_issue(load_issue(project / "issues" / f"{EXAMPLE_ISSUE}.yaml"), settings)
    assert "</strong> · " not in out.html.raw and "<strong>Innovation Hub News</strong></p>" in out.html.raw
    assert re.search(r"<p[^>]*>This email was sent to %%DIGEST\.email%%\.</p>", out.html.raw)
    assert "· <a href=\"\"" not in out.html.raw and 'href=""' not in out.html.raw
    footer = out.text.raw[out.text.raw.rindex("-" * 72):]
    assert "\nInnovation Hub News\nThis email was sent to %%DIGEST.email%%." in footer
