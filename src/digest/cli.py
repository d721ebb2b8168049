"""The `digest` command line: each command parses its options, calls one library function, reports.

Heavy modules (mjml, premailer, requests, sqlite work) are imported inside commands so that
`digest --help` starts fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import __version__
from .errors import DigestError


class AppContext:
    """What every command shares: where the settings are and whether to show tracebacks."""

    def __init__(self, config: str | None, debug: bool):
        self.config = config
        self.debug = debug
        self._settings = None

    @property
    def settings(self):
        """The loaded Settings (loaded on first use)."""
        if self._settings is None:
            from .config import load_settings

            self._settings = load_settings(self.config)
        return self._settings


pass_app = click.make_pass_decorator(AppContext)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="digest")
@click.option("--config", "config", type=click.Path(dir_okay=False), envvar="DIGEST_CONFIG",
              help="Settings file (default: the nearest digest.toml).")
@click.option("--debug", is_flag=True, help="Show the full traceback when something fails.")
@click.pass_context
def cli(ctx: click.Context, config: str | None, debug: bool) -> None:
    """digest — write a newsletter issue as a YAML file, preview it, send it."""
    ctx.obj = AppContext(config, debug)



@cli.command()
@click.argument("issue")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Output folder (default: [paths] output, out/).")
@click.option("--as", "as_email", metavar="EMAIL", help="Personalise message.eml for this subscriber from the list.")
@click.option("--to", "list_path", type=click.Path(dir_okay=False), help="Subscriber list to take --as from.")
@pass_app
def build(app: AppContext, issue: str, out_dir: str | None, as_email: str | None, list_path: str | None) -> None:
    """Render ISSUE (a slug or a path) into OUT/<slug>/: index.html, index.txt and message.eml."""
    from .build import build_issue
    from .issue import find_issue

    settings = app.settings
    result = build_issue(settings, find_issue(settings, issue), out_dir=Path(out_dir) if out_dir else None,
                         as_email=as_email, list_path=Path(list_path) if list_path else None)
    for path in result.files:
        click.echo(f"wrote {_display(path)}")
    click.echo(f"HTML size: {result.html_bytes / 1024:.1f} KB · message.eml is as {result.recipient} receives it")
    for warning in result.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)


@cli.command()
@click.argument("title")
@pass_app
def new(app: AppContext, title: str) -> None:
    """Create a new issue file for TITLE in the issues folder, dated today."""
    from .scaffold import new_issue

    path = new_issue(app.settings, title)
    click.echo(f"created {_display(path)} — edit it, then: digest preview {path.stem}")


@cli.group()
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
    from .subscribers import ListReport, read_subscribers

    settings = app.settings
    path = file or settings.path("subscribers")
    shown = _display(path)
    suppressed_keys, suppressed_note = _suppressed_keys(settings)
    report = ListReport()
    audience = suppressed = 0
    for sub in read_subscribers(path, strict=False, report=report, tags=tags):
        audience += 1
        suppressed += sub.key in suppressed_keys
    recipients = audience - suppressed
    for notice in report.notices:
        click.secho(f"note: {notice.replace(str(path), shown)}", fg="yellow")
    for problem in report.problems:
        click.echo(problem.format(shown))
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
        click.echo(f"  audience     {audience}  (tag {' or '.join(tags)})")
    click.echo(f"  suppressed   {suppressed}" + (f"  ({suppressed_note})" if suppressed_note else ""))
    click.echo(f"  recipients   {recipients}")
    if report.tags:
        click.echo("  tags         " + ", ".join(f"{t} {n}" for t, n in sorted(report.tags.items())))
    if strict and report.invalid:
        click.secho(f"{report.invalid} invalid row(s) in {shown} (--strict).", fg="red", err=True)
        raise click.exceptions.Exit(1)


def _suppressed_keys(settings) -> tuple[set[str], str | None]:
    """address_keys on the ledger's suppression list, and a note when they could not be counted."""
    try:
        from .ledger import Ledger, ledger_path
    except ImportError:
        return set(), "not counted: this digest has no ledger module yet"
    if not ledger_path(settings).exists():
        return set(), "no ledger yet: nothing sent or suppressed"  # do not create one just to look
    with Ledger.for_settings(settings, readonly=True) as ledger:
        return ledger.suppressed_keys(), None


def _display(path: Path) -> str:
    """A path relative to the current folder when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the CLI and turn DigestErrors into short messages."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="digest", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except DigestError as exc:
        if debug:
            raise
        click.secho(f"Error: {exc.message}", fg="red", err=True)
        if exc.hint:
            click.echo(f"  → {exc.hint}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
