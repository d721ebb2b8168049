"""Writing issues: `digest new`, `digest build`, `digest preview` (and `digest init` for a new newsletter)."""

from __future__ import annotations

from pathlib import Path

import click

from digest.cli.app import AppContext, display, pass_app


@click.command()
@click.argument("issue")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Output folder (default: [paths] output, out/).")
@click.option("--as", "as_email", metavar="EMAIL",
              help="Personalise OUT/<slug>.eml for this subscriber from the list (default: a sample reader).")
@click.option("--to", "list_path", type=click.Path(dir_okay=False), help="Subscriber list to take --as from.")
@pass_app
def build(app: AppContext, issue: str, out_dir: str | None, as_email: str | None, list_path: str | None) -> None:
    """Render ISSUE (a slug or a path): the web version into OUT/<slug>/ (index.html, index.txt, images;
    0755/0644, to be served) and the message as a sample reader receives it into OUT/<slug>.eml (0600)."""
    from digest.compose.build import build_issue
    from digest.compose.issue import find_issue

    settings = app.settings
    result = build_issue(settings, find_issue(settings, issue), out_dir=Path(out_dir) if out_dir else None,
                         as_email=as_email, list_path=Path(list_path) if list_path else None)
    for path in result.files:
        click.echo(f"wrote {display(path)}")
    who = f"{result.recipient} (a sample reader; --as EMAIL for one from the list)" if result.sample else result.recipient
    click.echo(f"HTML size: {result.html_bytes / 1024:.1f} KB · {display(result.message)} is as {who} receives it")
    for warning in result.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    from digest.checks.run import check_issue
    from digest.cli.check import print_findings

    report = check_issue(settings, issue, list_path=Path(list_path) if list_path else None)
    if report.findings:
        click.echo(f"Pre-send checks: {len(report.errors)} error(s), {len(report.warnings)} warning(s) "
                   f"(digest send would {'refuse' if report.errors else 'need --accept-warnings for'} these):", err=True)
        print_findings(report)


@click.command()
@click.argument("folder", required=False, default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", default="My Newsletter", show_default=True, help="The newsletter's name.")
@click.option("--from", "from_addr", metavar="'NAME <ADDRESS>'",
              help="The From address (default: the name at newsletter@example.org; change it before sending).")
def init(folder: Path, name: str, from_addr: str | None) -> None:
    """Start a new newsletter in FOLDER (default: here): digest.toml with every setting, the templates,
    issues/ with a first issue, and an example subscribers.csv. Never overwrites a file."""
    from digest.compose.scaffold import init_project

    written = init_project(folder, name=name, from_addr=from_addr)
    for path in written:
        click.echo(f"created {display(path)}")
    first = next(p for p in written if p.parent.name == "issues")
    go = "" if folder.resolve() == Path.cwd().resolve() else f"cd {display(folder)} && "
    click.echo(f"\nNext: {go}digest preview {first.stem}   (then edit digest.toml: name, from, postal address, URLs)")


@click.command()
@click.argument("title")
@pass_app
def new(app: AppContext, title: str) -> None:
    """Create a new issue file for TITLE in the issues folder, dated today."""
    from digest.compose.scaffold import new_issue

    path = new_issue(app.project_settings, title)
    click.echo(f"created {display(path)} — edit it, then: digest preview {path.stem}")


@click.command()
@click.argument("issue", required=False)
@click.option("--port", type=click.IntRange(0, 65535), metavar="N",
              help="Port on 127.0.0.1 (default: 8040, or the next free one; 0 = any free port).")
@click.option("--no-open", is_flag=True, help="Do not open a browser; just print the address.")
@pass_app
def preview(app: AppContext, issue: str | None, port: int | None, no_open: bool) -> None:
    """Live preview of the issues (or ISSUE) in a browser, served on 127.0.0.1; re-renders on save.

    The printed address carries a token: the preview answers only the browser that opened it."""
    from digest.preview.server import DEFAULT_PORT, open_browser, start_preview

    def changed(paths: list[Path]) -> None:
        click.echo("changed: " + ", ".join(display(p) for p in paths[:5]) + (" …" if len(paths) > 5 else ""))

    def failed(what: str, details: str) -> None:
        click.secho(f"preview error: {what}", fg="red", err=True)
        if app.debug:
            click.echo(details, err=True)

    server = start_preview(app.settings, issue=issue, port=port, on_change=changed, on_error=failed)
    try:
        url = server.login_url(server.start_path)  # the token: only this browser (and you) can open it
        if port is None and server.port != DEFAULT_PORT:
            click.echo(f"port {DEFAULT_PORT} is taken; using {server.port}")
        click.echo(f"Previewing at {url} — it updates when you save; Ctrl-C stops.")
        if not no_open and not open_browser(url):
            click.echo("(no graphical browser found: open the address yourself)")
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("\nPreview stopped.")
    finally:
        server.stop()


