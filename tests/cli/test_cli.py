"""The CLI: help everywhere, a fast `--help`, `digest build` and `digest new` end to end."""

from __future__ import annotations

import email
import email.policy
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.compose.issue import load_issue
from digest.compose.render import render_issue

from tests.helpers.project import EXAMPLE_ISSUE


def all_commands(group: click.Group, prefix: str = "digest"):
    for name, command in group.commands.items():
        yield f"{prefix} {name}", command
        if isinstance(command, click.Group):
            yield from all_commands(command, f"{prefix} {name}")


def test_every_command_and_option_has_help_text():
    missing = []
    for name, command in all_commands(cli):
        if not (command.help or "").strip():
            missing.append(name)
        for param in command.params:
            if isinstance(param, click.Option) and not (param.help or "").strip():
                missing.append(f"{name} {param.opts[0]}")
    assert not missing, f"no help text: {missing}"


def test_every_command_is_in_the_readme():
    from tests.helpers.project import REPO

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    undocumented = [name for name, command in all_commands(cli)
                    if not isinstance(command, click.Group) and f"`{name}" not in readme and f"{name} " not in readme]
    assert not undocumented, f"commands missing from README.md: {undocumented}"


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
    msg = email.message_from_bytes((folder / "message.eml").read_bytes(), policy=email.policy.default)
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
    assert "unknown field 'sections[6].titl'. Did you mean 'title'?" in err
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
