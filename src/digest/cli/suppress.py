"""The suppression list: `digest unsubscribe` and `digest suppress import|export|list|remove`."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import click

from digest.cli.app import AppContext, display, pass_app
from digest.text import terminal_safe


@click.command()
@click.argument("emails", nargs=-1)
@click.option("--token", metavar="TOKEN", help="A signed token from an unsubscribe link (verified first).")
@click.option("--reason", default="unsubscribed", show_default=True, help="Reason recorded with the address.")
@pass_app
def unsubscribe(app: AppContext, emails: tuple[str, ...], token: str | None, reason: str) -> None:
    """Add EMAIL(s) to the suppression list, or the address in a signed --token (for a one-click endpoint)."""
    from digest.audience.tokens import address_from_token
    from digest.store.suppressions import suppress as add

    if not emails and not token:
        raise click.UsageError("give one or more EMAIL addresses, or --token TOKEN")
    settings = app.project_settings
    addresses = list(emails) + ([address_from_token(settings, token)] if token else [])
    for address, new in add(settings, addresses, reason, source="token" if token else "manual"):
        click.echo(f"{'unsubscribed' if new else 'already suppressed'}: {terminal_safe(address)}")


@click.group()
def suppress() -> None:
    """The suppression list: addresses no send ever goes to (unsubscribes, permanent bounces)."""


@suppress.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--reason", default="imported", show_default=True, help="Reason when the file has none.")
@pass_app
def suppress_import(app: AppContext, file: Path, reason: str) -> None:
    """Add the addresses in FILE (CSV: email[,reason]; a header row is optional)."""
    from digest.audience.suppressions import read_suppression_file
    from digest.store.suppressions import import_suppressions

    rows = read_suppression_file(file, reason)
    new = import_suppressions(app.settings, rows, source=f"import:{file.name}")
    click.echo(f"{len(rows):,} addresses read from {display(file)}: {new:,} added, {len(rows) - new:,} already there")


@suppress.command("export")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@pass_app
def suppress_export(app: AppContext, file: Path | None) -> None:
    """Write the suppression list as CSV (email,reason,source,created_at) to FILE or standard output."""
    from digest.store.suppressions import suppression_rows

    out = open(file, "w", newline="", encoding="utf-8") if file else sys.stdout
    try:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["email", "reason", "source", "created_at"])
        n = 0
        for row in suppression_rows(app.settings):
            writer.writerow(row)
            n += 1
    finally:
        if file:
            out.close()
    if file:
        click.echo(f"wrote {n:,} suppressed addresses to {display(file)}")


@suppress.command("list")
@pass_app
def suppress_list(app: AppContext) -> None:
    """Show the suppression list."""
    from digest.store.suppressions import suppression_rows

    n = 0
    for email_addr, reason, source, created in suppression_rows(app.settings):
        click.echo(terminal_safe(f"{created[:19]}  {email_addr:40}  {source:10}  {reason}"))  # imported rows
        n += 1
    click.echo(f"{n:,} suppressed address{'es' if n != 1 else ''}")


@suppress.command("remove")
@click.argument("emails", nargs=-1, required=True)
@pass_app
def suppress_remove(app: AppContext, emails: tuple[str, ...]) -> None:
    """Take EMAIL(s) off the suppression list (e.g. someone subscribed again)."""
    from digest.store.suppressions import unsuppress

    for address, removed in unsuppress(app.settings, emails):
        click.echo(f"{'removed' if removed else 'not suppressed'}: {terminal_safe(address)}")


@suppress.command("sync")
@click.option("--transport", "transport_name", metavar="NAME",
              help="The provider to pull from: postmark, sendgrid, mailgun or resend (default: [send] transport).")
@pass_app
def suppress_sync(app: AppContext, transport_name: str | None) -> None:
    """Pull bounces, complaints and unsubscribes from the provider's suppression API into the list (from cron, too)."""
    from digest.feedback.sync import sync_suppressions

    for entry in sync_suppressions(app.settings, transport_name):
        click.echo(f"{entry.name:28} {entry.read:,} read, {entry.added:,} newly suppressed")
