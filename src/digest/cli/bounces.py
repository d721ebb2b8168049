"""`digest bounces fetch`: bounce mail from the [send] bounce_address mailbox, over IMAP."""

from __future__ import annotations

import click

from digest.cli.app import AppContext, pass_app
from digest.text import terminal_safe


@click.group()
def bounces() -> None:
    """Bounce mail: the delivery reports that come back to [send] bounce_address (SMTP sends)."""


@bounces.command("fetch")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False),
              help="PEM file of the CA to verify the IMAP server with (default: [feedback] imap_ca_file, "
                   "else the system's CA store).")
@click.option("--timeout", default=30.0, show_default=True, type=click.FloatRange(1, 600),
              help="Seconds allowed for connecting and for every IMAP reply.")
@pass_app
def bounces_fetch(app: AppContext, ca_file: str | None, timeout: float) -> None:
    """Read the bounce mailbox: record each bounce, suppress hard bounces, move handled mail (from cron, too)."""
    from digest.feedback.fetch import fetch_bounces

    report = fetch_bounces(app.project_settings, ca_file=ca_file, timeout=timeout)
    rec = report.recorded
    click.echo(f"{report.address} {terminal_safe(report.folder)}: {report.handled:,} bounces moved to "
               f"{terminal_safe(report.done_folder)}, {report.not_bounces:,} other messages left in place")
    click.echo(f"  {report.hard:,} hard bounces · {report.soft:,} soft bounces · {report.deferred:,} delayed")
    click.echo(f"  {rec.new:,} events recorded ({rec.matched:,} tied to a send), {rec.replayed:,} already recorded")
    for address in report.by_address:
        click.echo(f"  no Message-ID in the bounce for {terminal_safe(address)}: tied to the latest send to it")
    for address, reason in rec.suppressed:
        click.echo(f"  suppressed {terminal_safe(address)}: {terminal_safe(reason)}")
