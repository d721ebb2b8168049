"""`digest status ISSUE`: one send in the ledger, its state, and the recipients that need attention."""

from __future__ import annotations

import click

from digest.cli.app import AppContext, pass_app
from digest.clock import utc_now
from digest.text import terminal_safe


@click.command()
@click.argument("issue")
@click.option("--all", "show_all", is_flag=True, help="List every failed/deferred recipient (default: the first 50).")
@pass_app
def status(app: AppContext, issue: str, show_all: bool) -> None:
    """Show ISSUE's send in the ledger: its state, counts, and the failed and deferred recipients with their errors."""
    from digest.status import label, send_details

    now = utc_now()
    details = send_details(app.settings, issue, now, limit=None if show_all else 50)
    send, counts, transient = details.send, details.counts, details.failed_transient
    running = details.status.running
    click.echo(f"{send.slug}: {details.status.state} — {label(details.status, now)}  (started {send.started_at}"
               + (f", finished {send.finished_at}" if send.finished_at else "") + ")")
    click.echo(f"  subject     {terminal_safe(send.subject)}")
    click.echo(f"  audience    {send.audience:,}  from {send.list_path}")
    click.echo(f"  sent        {counts['sent']:,}"
               + (f"  ({details.in_doubt:,} re-sent after an interrupted run)" if details.in_doubt else ""))
    click.echo(f"  failed      {counts['failed']:,}  ({counts['failed'] - transient:,} permanent, {transient:,} retryable)")
    click.echo(f"  deferred    {counts['deferred']:,}")
    click.echo(f"  pending     {counts['pending']:,}")
    if counts["sending"]:
        why = ("being sent by that run" if running is not None else
               "left by a run that was killed: possibly delivered; the next run sends them again")
        click.echo(f"  in flight   {counts['sending']:,}  ({why})")
    click.echo(f"  skipped     {counts['skipped']:,}  (suppressed or left the list after the send started)")
    sk = send.skipped
    click.echo(f"  not in audience at start: {sk.get('suppressed', 0):,} suppressed · {sk.get('invalid', 0):,} "
               f"invalid · {sk.get('duplicates', 0):,} duplicates")
    if details.feedback is not None:
        _feedback_lines(details.feedback)
    if details.rows:
        click.echo("")
        for r in details.rows:
            kind = r.state + ("" if r.state != "failed" else (" (permanent)" if r.permanent else " (retryable)"))
            click.echo(terminal_safe(f"  {kind:22} {r.email}  attempts {r.attempts}  {r.last_error or ''}"))
        total = counts["failed"] + counts["deferred"] + counts["sending"]
        if not show_all and total > len(details.rows):
            click.echo(f"  … {total - len(details.rows):,} more (--all lists them)")
    if counts["deferred"] or transient:
        click.echo(f"\nRe-send the deferred and retryable ones with: digest retry {send.slug}")


def _feedback_lines(fb) -> None:
    """What came back after the send (webhooks, `digest suppress sync`, `digest bounces fetch`), as rates of sent."""
    click.echo("  came back   (bounces, complaints and deliveries reported since)")
    for name, count in (("delivered", fb.delivered), ("hard bounces", fb.hard_bounced),
                        ("soft bounces", fb.soft_bounced), ("complaints", fb.complained),
                        ("unsubscribed", fb.unsubscribed)):
        click.echo(f"    {name:13} {count:,}  ({fb.rate(count):.2f} % of sent)")
