"""`digest subscribers check`: every problem in the list with its line, and who a send would reach."""

from __future__ import annotations

from pathlib import Path

import click

from digest.cli.app import AppContext, display, pass_app
from digest.text import terminal_safe


@click.group()
def subscribers() -> None:
    """Inspect the subscriber list."""


@subscribers.command("check")
@click.argument("file", required=False, type=click.Path(dir_okay=True, path_type=Path))
@click.option("--strict", is_flag=True, help="Exit with status 1 when any row is invalid.")
@click.option("--tag", "tags", multiple=True, metavar="TAG",
              help="Also count the audience having this tag (repeatable; any tag matches).")
@pass_app
def subscribers_check(app: AppContext, file: Path | None, strict: bool, tags: tuple[str, ...]) -> None:
    """Read FILE (default: [paths] subscribers) and list every problem with its line; send nothing."""
    from digest.audience.check import check_list

    result = check_list(app.settings, file, tags)
    path, report = result.path, result.report
    shown = display(path)
    for notice in report.notices:
        click.secho(f"note: {notice.replace(str(path), shown)}", fg="yellow")
    for problem in report.problems:
        click.echo(terminal_safe(problem.format(shown)))  # quotes the row's cells
    if report.problems_not_kept:
        click.echo(f"… and {report.problems_not_kept} more problems not listed ({report.skipped} in all)")
    label = "" if report.is_utf8 else f", {report.encoding_label}"
    delimiter = {",": "comma", ";": "semicolon", "\t": "tab"}.get(report.delimiter, repr(report.delimiter))
    click.echo(f"{shown} ({delimiter}-separated{label})")
    click.echo(f"  rows         {report.rows}")
    click.echo(f"  valid        {report.valid}")
    click.echo(f"  invalid      {report.invalid}")
    click.echo(f"  duplicates   {report.duplicates}")
    if tags:
        click.echo(f"  audience     {result.audience}  (tag {' or '.join(tags)})")
    click.echo(f"  suppressed   {result.suppressed}" + (f"  ({result.suppressed_note})" if result.suppressed_note else ""))
    click.echo(f"  recipients   {result.recipients}")
    if report.tags:
        click.echo("  tags         " + ", ".join(f"{t} {n}" for t, n in sorted(report.tags.items())))
    if report.valid == 0:
        from digest.audience.check import no_valid_rows_hint

        click.secho(f"Error: {shown} has no valid subscriber: a send would reach nobody.", fg="red", err=True)
        click.echo(f"  → {no_valid_rows_hint(report, shown)}", err=True)
        raise click.exceptions.Exit(1)
    if strict and report.invalid:
        click.secho(f"{report.invalid} invalid row(s) in {shown} (--strict).", fg="red", err=True)
        raise click.exceptions.Exit(1)
