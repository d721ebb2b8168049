"""A bad issue file or template gives a short error naming the file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.compose.issue import find_issue, load_issue
from digest.compose.render import render_issue
from digest.errors import IssueError, RenderError

GOOD = """subject: Hello
title: A title
date: 2024-01-11
intro: Hi there.
sections:
  - title: One
    body: Body one.
  - title: Two
    body: Body two.
    image:
      src: https://example.org/a.png
      alt: A picture
"""


def write(project: Path, text: str, name: str = "bad.yaml") -> Path:
    path = project / "issues" / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> str:
    with pytest.raises(IssueError) as info:
        load_issue(path)
    return str(info.value)


def test_good_issue_loads(project):
    issue = load_issue(write(project, GOOD))
    assert [s.title for s in issue.sections] == ["One", "Two"]
    assert issue.sections[1].image.alt == "A picture"
    assert issue.line_of("sections[1].title") == 8


def test_broken_yaml_names_file_and_line(project):
    path = write(project, GOOD.replace("  - title: Two", "  - title: Two: oops"))
    assert error_of(path).startswith(f"{path}:8: broken YAML")


def test_missing_required_field(project):
    path = write(project, GOOD.replace("subject: Hello\n", ""))
    assert f"{path}:1: the issue is missing the required field 'subject'" in error_of(path)


def test_section_without_title(project):
    path = write(project, GOOD.replace("  - title: Two\n    body: Body two.", "  - body: Body two."))
    assert f"{path}:8: section 2 has no title." in error_of(path)


def test_image_without_alt(project):
    path = write(project, GOOD.replace("      alt: A picture\n", ""))
    msg = error_of(path)
    assert f"{path}:11: section 2 ('Two'): image 'https://example.org/a.png' has no alt text ('image.alt')" in msg


def test_unknown_key_gets_did_you_mean(project):
    path = write(project, GOOD.replace("intro:", "intor:"))
    assert f"{path}:4: unknown field 'intor'. Did you mean 'intro'?" in error_of(path)


def test_unknown_section_key(project):
    path = write(project, GOOD.replace("    body: Body one.", "    bdy: Body one."))
    assert f"{path}:7: section 1 ('One'): unknown field 'bdy'. Did you mean 'body'?" in error_of(path)


def test_bad_date_and_naive_send_at(project):
    path = write(project, GOOD.replace("date: 2024-01-11", "date: 11 January"))
    assert f"{path}:3: 'date' = '11 January' is not a date like 2023-12-21" in error_of(path)
    path = write(project, GOOD + "send_at: 2024-01-11T09:00\n")
    assert "'send_at' = '2024-01-11T09:00' is not an ISO date-time with a time zone (it has no time zone" in error_of(path)


def test_duplicate_key(project):
    path = write(project, GOOD + "title: Again\n")
    assert f"{path}:13: 'title' is given twice (first on line 2)" in error_of(path)


def test_empty_file_and_missing_file(project):
    assert "the file is empty" in error_of(write(project, ""))
    assert "no such issue file" in error_of(project / "issues" / "nope.yaml")


def test_find_issue_suggests_a_slug(settings):
    with pytest.raises(IssueError) as info:
        find_issue(settings, "2023-12-learning-innovation-highlight")
    assert "Did you mean '2023-12-learning-innovation-highlights'?" in str(info.value)


def test_undefined_template_variable_names_template_and_line(project, settings):
    footer = project / "templates" / "partials" / "footer.mjml.j2"
    text = footer.read_text()
    line = text[: text.index("{{ newsletter.why }}")].count("\n") + 1
    footer.write_text(text.replace("{{ newsletter.why }}", "{{ newsletter.nonexistent_setting }}"))
    with pytest.raises(RenderError) as info:
        render_issue(load_issue(write(project, GOOD)), settings)
    assert f"templates/partials/footer.mjml.j2:{line}: undefined template variable" in str(info.value)
    assert "nonexistent_setting" in str(info.value)


def test_invalid_mjml_unknown_element(project, settings):
    section = project / "templates" / "partials" / "section.mjml.j2"
    section.write_text(section.read_text().replace("<mj-divider", "<mj-dividr", 1))
    with pytest.raises(RenderError) as info:
        render_issue(load_issue(write(project, GOOD)), settings)
    assert "templates/partials/section.mjml.j2:4: unknown MJML element <mj-dividr>" in str(info.value)


def test_invalid_mjml_unclosed(project, settings):
    layout = project / "templates" / "newsletter.mjml.j2"
    layout.write_text(layout.read_text().replace("</mjml>", ""))
    with pytest.raises(RenderError) as info:
        render_issue(load_issue(write(project, GOOD)), settings)
    assert "templates/newsletter.mjml.j2: invalid MJML" in str(info.value)


def test_missing_template(project, settings):
    path = write(project, GOOD + "template: fancy\n")
    with pytest.raises(RenderError) as info:
        render_issue(load_issue(path), settings)
    assert "template 'fancy.mjml.j2' not found" in str(info.value)
