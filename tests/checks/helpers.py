"""Editing the example project's issue, list and settings for one test, and running `digest` on it."""

from __future__ import annotations

import csv
from pathlib import Path

import click
from click.testing import CliRunner

from digest.checks.run import check_issue
from digest.cli import main
from digest.config import load_settings
from tests.helpers.project import EXAMPLE_ISSUE

ISSUE_FILE = f"issues/{EXAMPLE_ISSUE}.yaml"


def edit_issue(project: Path, old: str, new: str) -> Path:
    """Replace `old` (which must be there) by `new` in the example issue file."""
    path = project / ISSUE_FILE
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def edit_file(path: Path, old: str, new: str) -> None:
    """Replace `old` (which must be there) by `new` in a file of the project."""
    text = path.read_text(encoding="utf-8")
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def line_of(project: Path, needle: str) -> int:
    """The line of the issue file holding `needle`."""
    for number, line in enumerate((project / ISSUE_FILE).read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(needle)


def write_list(project: Path, rows: list[list[str]], header=("email", "first_name", "tags"),
               name: str = "subscribers.example.csv", delimiter: str = ",") -> Path:
    """A subscriber list in place of the example one."""
    path = project / name
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def findings(project: Path, **kw) -> dict[str, list]:
    """code → findings of `digest check` on the example issue."""
    report = check_issue(load_settings(project / "digest.toml"), EXAMPLE_ISSUE, **kw)
    by_code: dict[str, list] = {}
    for finding in report.findings:
        by_code.setdefault(finding.code, []).append(finding)
    return by_code


def run(*args: str):
    """`digest ARGS` in-process, errors reported as the console script reports them: (code, stdout, stderr)."""
    result = CliRunner().invoke(_main, list(args))
    return result.exit_code, result.stdout, result.stderr


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                 "help_option_names": []})
@click.pass_context
def _main(ctx: click.Context) -> None:
    main(ctx.args)
