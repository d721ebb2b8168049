"""Hostile or extreme issue files fail fast with an error naming the file and line, and leave the other issues alone."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.compose.issue import load_issue
from digest.errors import IssueError
from tests.helpers.project import EXAMPLE_ISSUE

# "Billion laughs": nine levels of nine aliases each, 387 million strings once expanded.
ALIAS_BOMB = "".join(
    f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9 if i else ["lol"] * 9) + "]\n" for i in range(9)
) + "subject: *l8\n"
SELF_ALIAS = "subject: &me [*me]\ntitle: x\n"
DEEP = "subject: " + "[" * 5000 + "]" * 5000 + "\n"


def write(project: Path, text: str, name: str = "2024-02-bad.yaml") -> Path:
    path = project / "issues" / name
    path.write_text(text, encoding="utf-8")
    return path


def timed_error(path: Path) -> tuple[str, float]:
    started = time.perf_counter()
    with pytest.raises(IssueError) as info:
        load_issue(path)
    return str(info.value), time.perf_counter() - started


@pytest.mark.parametrize("text, line, fragment", [
    (ALIAS_BOMB, 1, "anchors and aliases (&name, *name) are not allowed in issue files"),
    (SELF_ALIAS, 1, "anchors and aliases (&name, *name) are not allowed in issue files"),
    (DEEP, 1, "nested more than 20 levels deep"),
], ids=["alias-bomb", "self-alias", "5000-deep"])
def test_hostile_yaml_fails_fast_naming_the_file(project, text, line, fragment):
    path = write(project, text)
    message, seconds = timed_error(path)
    assert seconds < 0.5, f"took {seconds:.2f} s"
    assert message.startswith(f"{path}:{line}: ") and fragment in message


def test_an_anchor_without_alias_is_refused_too(project):
    path = write(project, "subject: &s Hello\n")
    assert f"{path}:1: anchors and aliases (&name, *name) are not allowed" in timed_error(path)[0]


def test_an_issue_file_over_the_size_limit_is_refused_before_parsing(project):
    path = write(project, "subject: Hi\nintro: |\n" + "  lorem ipsum dolor\n" * 70_000)
    message, seconds = timed_error(path)
    assert seconds < 0.5
    assert f"{path}: the file is 1,367 KB; an issue file may be at most 256 KB" in message


def test_a_huge_image_src_is_a_clear_error_not_an_oserror(project):
    text = (project / "issues" / f"{EXAMPLE_ISSUE}.yaml").read_text(encoding="utf-8")
    path = write(project, text.replace("src: images/yellow-shape.png", "src: " + "a/" * 2_500 + "x.png", 1))
    message, seconds = timed_error(path)
    assert seconds < 0.5
    assert message.startswith(f"{path}:8: 'header_image.src' is 5,005 characters long; at most 2,048")


def test_a_markdown_field_over_its_limit_names_the_field_and_line(project):
    text = (project / "issues" / f"{EXAMPLE_ISSUE}.yaml").read_text(encoding="utf-8")
    path = write(project, text.replace("intro: |\n", "intro: |\n  " + "*a " * 70_000 + "\n", 1))
    message, _ = timed_error(path)
    assert "'intro' is 21" in message and "characters long; at most 200,000" in message


# --- one bad file does not stop the others -----------------------------------------------------

def test_the_other_issues_still_list_schedule_and_send(project, settings, monkeypatch):
    from digest.cli import cli
    from digest.preview.project import PreviewProject

    monkeypatch.setenv("DIGEST_UNSUBSCRIBE_KEYS", "k1:Qv3rT9wXz2LmN8pK4sD7fG1hJ6yB0cE5aU")
    write(project, ALIAS_BOMB, "2024-02-bomb.yaml")
    write(project, DEEP, "2024-03-deep.yaml")
    good = project / "issues" / f"{EXAMPLE_ISSUE}.yaml"
    good.write_text(good.read_text(encoding="utf-8").replace(
        "date: 2023-12-21\n", "date: 2023-12-21\nsend_at: 2023-12-21T09:00:00+01:00\n", 1), encoding="utf-8")
    started = time.perf_counter()
    listing = PreviewProject(settings).listing()
    by_slug = {e["slug"]: e for e in listing["issues"]}
    assert "anchors and aliases" in by_slug["2024-02-bomb"]["error"]["message"]
    assert "20 levels" in by_slug["2024-03-deep"]["error"]["message"]
    assert by_slug[EXAMPLE_ISSUE]["error"] is None

    runner = CliRunner()
    schedule = runner.invoke(cli, ["schedule"], catch_exceptions=False)
    assert re.search(rf"{EXAMPLE_ISSUE} +due", schedule.output), schedule.output
    assert re.search(r"2024-02-bomb +failed +issues/2024-02-bomb.yaml:1: anchors and aliases", schedule.output)
    due = runner.invoke(cli, ["send", "--due"], catch_exceptions=False)
    assert re.search(rf"{EXAMPLE_ISSUE}: sent — (\d+)/\1 sent", due.output), due.output
    assert time.perf_counter() - started < 20


# --- errors name sections as people count them -------------------------------------------------

def test_errors_name_the_section_by_number_and_title(project):
    text = (project / "issues" / f"{EXAMPLE_ISSUE}.yaml").read_text(encoding="utf-8")
    assert "  - title: Innovation Festival\n" in text
    head, tail = text.split("  - title: Innovation Festival\n", 1)
    cta = "    cta:\n      lable: The recap\n      url: https://example.org/innovation-festival-2023\n"
    path = write(project, head + "  - title: Innovation Festival\n" + cta + tail)
    message = timed_error(path)[0]
    number = head.count("  - title:") + 1
    assert f"section {number} ('Innovation Festival'): unknown field 'cta.lable'. Did you mean 'label'?" in message
    assert "sections[" not in message


# --- Markdown ----------------------------------------------------------------------------------

def test_markdown_nested_too_deep_names_the_line_instead_of_dropping_the_rest(project):
    from digest.compose.markdown import to_text

    deep = "- " * 3000 + "the end"
    assert to_text(deep) == ""  # what markdown-it makes of it: the text silently gone
    text = (project / "issues" / f"{EXAMPLE_ISSUE}.yaml").read_text(encoding="utf-8")
    head, tail = text.split("  - title: Innovation Festival\n    body: |\n", 1)
    body = "      A list:\n\n" + "".join("      " + "  " * i + "- level\n" for i in range(12)) + "\n"
    path = write(project, head + "  - title: Innovation Festival\n    body: |\n" + body + tail)
    line = (head.count("\n") + 2) + 1 + 2 + 8  # 'body: |', its first line, a blank, then the 9th level
    message, seconds = timed_error(path)
    assert seconds < 0.5
    assert message.startswith(f"{path}:{line}: section ") and "('Innovation Festival'): 'body' nests lists or " \
        "quotes more than 8 levels deep" in message


def test_a_3000_deep_list_and_a_large_emphasis_body_stay_fast(project, settings):
    from digest.compose.render import render_issue

    started = time.perf_counter()
    message, _ = timed_error(write(project, "subject: x\nintro: |\n" + "".join(
        "  " + "  " * i + "- x\n" for i in range(3000))))
    assert "the file is 8,8" in message  # 3,000 levels by indentation is 9 MB: refused unread
    text = (project / "issues" / f"{EXAMPLE_ISSUE}.yaml").read_text(encoding="utf-8")
    path = write(project, text.replace("intro: |\n", "intro: |\n  " + "*a **b " * 28_000 + "\n", 1))
    render_issue(load_issue(path), settings)  # the largest emphasis body the limits let through
    assert time.perf_counter() - started < 6


def test_an_image_name_the_file_system_cannot_hold_is_a_render_error(project, settings):
    from digest.compose.render import render_issue
    from digest.errors import RenderError

    text = (project / "issues" / f"{EXAMPLE_ISSUE}.yaml").read_text(encoding="utf-8")
    path = write(project, text.replace("src: images/yellow-shape.png", "src: images/" + "y" * 300 + ".png", 1))
    with pytest.raises(RenderError) as info:
        render_issue(load_issue(path), settings)
    assert str(info.value).startswith(f"{path}: image file ") and "File name too long" in str(info.value)
