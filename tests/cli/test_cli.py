"""The CLI: a fast `--help`, `digest build` and `digest new` end to end (help texts: tests/test_docs.py)."""

from __future__ import annotations

import email
import email.policy
import subprocess
import sys

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.compose.issue import load_issue
from digest.compose.render import render_issue
from tests.helpers.project import EXAMPLE_ISSUE


def test_help_does_not_import_the_render_stack():
    code = ("import sys\nfrom digest.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('premailer', 'mjml', 'cssutils', 'requests', 'sqlite3') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_build_writes_html_text_and_a_parseable_message(project):
    result = CliRunner().invoke(cli, ["build", EXAMPLE_ISSUE], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    folder = project / "out" / EXAMPLE_ISSUE
    assert f"wrote out/{EXAMPLE_ISSUE}/index.html" in result.output
    assert "HTML size:" in result.output
    html = (folder / "index.html").read_text(encoding="utf-8")
    assert "Learning &amp; Innovation Highlights 2023" in html
    assert 'src="images/yellow-shape.png"' in html and (folder / "images" / "yellow-shape.png").is_file()
    assert "%%DIGEST" not in html
    text = (folder / "index.txt").read_text(encoding="utf-8")
    assert "Shift the Power Lab 2.0" in text and "%%DIGEST" not in text
    msg = email.message_from_bytes((project / "out" / f"{EXAMPLE_ISSUE}.eml").read_bytes(), policy=email.policy.default)
    assert msg["Subject"] == "Innovation Hub News: Learning & Innovation Highlights 2023"
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    body = msg.get_body(("html",)).get_content()
    assert "%%DIGEST" not in body and "Shift the Power Lab 2.0" in body
    assert not list(project.glob("out/.*")), "staging folders left behind"


def test_build_failure_leaves_previous_output_untouched(project):
    assert CliRunner().invoke(cli, ["build", EXAMPLE_ISSUE]).exit_code == 0
    before = (project / "out" / EXAMPLE_ISSUE / "index.html").read_bytes()
    issue = project / "issues" / f"{EXAMPLE_ISSUE}.yaml"
    issue.write_text(issue.read_text().replace("title: Learning", "titel: Learning"))
    from digest.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["build", EXAMPLE_ISSUE])
    assert exit_info.value.code == 1
    assert (project / "out" / EXAMPLE_ISSUE / "index.html").read_bytes() == before
    assert not list(project.glob("out/.*"))


def test_build_error_is_one_short_paragraph(project, capsys):
    issue = project / "issues" / f"{EXAMPLE_ISSUE}.yaml"
    issue.write_text(issue.read_text().replace("  - title: Innovation Festival\n", "  - titl: Innovation Festival\n"))
    from digest.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["build", EXAMPLE_ISSUE])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: ")
    assert "section 7: unknown field 'titl'. Did you mean 'title'?" in err
    assert "Traceback" not in err


def test_new_scaffolds_an_issue_that_renders(project, settings):
    result = CliRunner().invoke(cli, ["new", "Spring update: what's next?"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    created = sorted((project / "issues").glob("*spring-update-what-s-next.yaml"))
    assert len(created) == 1
    issue = load_issue(created[0])
    assert issue.title == "Spring update: what's next?"
    rendered = render_issue(issue, settings)
    assert "first_name" in rendered.fields
    again = CliRunner().invoke(cli, ["new", "Spring update: what's next?"])
    assert again.exit_code != 0 and "already exists" in str(again.exception)
