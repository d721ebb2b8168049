"""What a send prints: the dry run, the start line, the summary."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from digest.cli.app import display
from digest.text import terminal_safe

if TYPE_CHECKING:  # pragma: no cover
    from digest.delivery.dryrun import DryRun, RetryDryRun
    from digest.delivery.options import RunOptions, RunReport


def print_start(report: "RunReport", job, options: "RunOptions", *, retry: bool, limit: int | None) -> int:
    """The line a run starts with (plus what changed since an earlier run); returns how many it sends."""
    prepared = report.prepared
    total = prepared["in_doubt"] + prepared["deferred"] + prepared["failed"]
    total += report.counts["pending"] if not retry else 0
    if limit is not None:
        total = min(total, limit)
    how = f"{report.connections} connection{'s' if report.connections != 1 else ''}"
    if options.rate:
        how += f", at most {options.rate:g}/s"
    verb = "Retrying" if retry else ("Sending" if report.started_new else "Resuming")
    click.echo(f"{verb} '{job.slug}' via {job.transport_name} ({how}): {total:,} to send"
               + (f", {report.already_sent:,} already sent" if report.already_sent else ""))
    if report.connections_refused:
        click.secho(f"  the server accepted {report.connections} of {options.connections} connections "
                    f"({report.connections_refused}); sending over {report.connections}", fg="yellow")
    if report.added or report.dropped:
        click.echo(f"  list changed: {report.added:,} new recipients added, {report.dropped:,} dropped")
    if prepared["in_doubt"]:
        click.secho(f"  {prepared['in_doubt']:,} were in flight when an earlier run stopped: they may "
                    "have been delivered and are sent again (they may receive it twice)", fg="yellow")
    if prepared["suppressed"]:
        click.echo(f"  {prepared['suppressed']:,} suppressed since the send started: skipped")
    if total == 0:
        click.echo(f"  nothing left to send: {report.already_sent:,} already sent"
                   + (f", {report.counts['failed']:,} failed for good" if report.counts["failed"] else ""))
    return total


def print_summary(report: "RunReport") -> None:
    """The summary after a run: counts, duration, why it stopped, what to run next."""
    stats = report.stats
    skipped = report.skipped or {}
    rate = stats.sent / stats.duration if stats.duration > 0 else 0.0
    click.echo("Summary")
    click.echo(f"  sent        {stats.sent:,}")
    click.echo(f"  failed      {stats.failed:,}" + (f"  ({stats.suppressed_now:,} added to the suppression list)"
                                                   if stats.suppressed_now else ""))
    click.echo(f"  deferred    {stats.deferred:,}")
    click.echo(f"  skipped     {skipped.get('suppressed', 0) + report.prepared.get('suppressed', 0):,} suppressed · "
               f"{skipped.get('invalid', 0):,} invalid · {skipped.get('duplicates', 0):,} duplicates · "
               f"{report.already_sent:,} already sent"
               + (f" · {skipped.get('not_in_audience', 0):,} without the tags" if skipped.get("not_in_audience") else ""))
    _print_invalid_rows(skipped, report.send.list_path)
    if report.destination:
        click.echo(f"  via         {report.destination}")
    click.echo(f"  duration    {stats.duration:.1f} s ({rate:,.0f} messages/s)")
    left = report.counts["pending"] + report.counts["sending"] + report.counts["deferred"]
    if stats.stopped:
        click.secho(f"Stopped: {terminal_safe(stats.stopped)}", fg="red", err=True)
    for line in stats.last_errors[-3:]:
        click.echo(f"  last error: {terminal_safe(line)}", err=True)  # a provider's words
    if left or stats.failed:
        click.echo(f"{left:,} still to send · details: digest status {report.send.slug}"
                   + (f" · then: digest retry {report.send.slug}" if report.counts["deferred"] or report.counts["failed"]
                      else ""))


def _print_invalid_rows(skipped: dict, list_path: str) -> None:
    """The first invalid rows the send left out, with their lines, and where to see them all."""
    from digest.audience.subscribers import Problem

    name = display(list_path)
    for line, value, reason in skipped.get("invalid_rows") or []:
        click.echo(f"              {terminal_safe(Problem(line, value, reason).format(name))}")
    if skipped.get("invalid"):
        click.echo(f"              every skipped row: digest subscribers check {name}")


def print_dry_run(p: "DryRun") -> None:
    """The dry run: counts, the ledger's state, and the start of a sample message."""
    import email
    import email.policy

    click.echo(f"Dry run for '{p.slug}' — nothing is sent.")
    click.echo(f"  subject      {terminal_safe(p.subject)}")
    click.echo(f"  from         {terminal_safe(p.from_addr)}")
    click.echo(f"  transport    {p.transport}")
    if p.dkim:
        click.echo(f"  dkim         {terminal_safe(p.dkim)}")
    tags = f"  (tags: {', '.join(p.tags)})" if p.tags else ""
    click.echo(f"  list         {display(p.list_path)}{tags}")
    c = p.counts
    click.echo(f"  audience     {c.recipients:,} recipients")
    click.echo(f"  skipped      {c.suppressed:,} suppressed · {c.invalid:,} invalid · {c.duplicates:,} duplicates"
               + (f" · {c.not_in_audience:,} without the tags" if p.tags else ""))
    _print_invalid_rows(c.skipped(), p.list_path)
    if p.send is None:
        click.echo("  ledger       not started")
    else:
        lc = p.ledger_counts
        click.echo(f"  ledger       started {p.send.started_at}: {p.already_sent:,} already sent, "
                   f"{lc['failed']:,} failed, {p.to_send:,} still to send"
                   + (f" ({lc['sending']:,} possibly delivered by an interrupted run)" if lc["sending"] else ""))
        if p.changes:
            click.secho(f"  changed      {' and '.join(p.changes)} since the send started: "
                        "resuming needs --resume-changed", fg="yellow")
    click.echo(f"  would send   {p.to_send:,}")
    for note in p.notes:
        click.secho(f"  note: {terminal_safe(note)}", fg="yellow")
    if p.sample is None:
        return
    # The sample is a subscriber's message: their fields, as the list has them.
    click.echo(f"\nSample message (to {terminal_safe(p.sample_to)}):")
    msg = email.message_from_bytes(p.sample, policy=email.policy.default)
    for name in ("From", "To", "Reply-To", "Subject", "Date", "Message-ID", "List-Id", "List-Unsubscribe",
                 "List-Unsubscribe-Post"):
        if msg[name]:
            click.echo(f"  {name}: {terminal_safe(str(msg[name]))}")
    body = msg.get_body(("plain",))
    text = body.get_content() if body is not None else ""
    lines = text.strip("\n").splitlines()
    click.echo("")
    for line in lines[:14]:
        click.echo(f"  | {terminal_safe(line)}")
    if len(lines) > 14:
        click.echo(f"  | … ({len(lines) - 14} more lines; `digest build {p.slug}` writes the whole message)")


def print_retry_dry_run(p: "RetryDryRun") -> None:
    """The retry's dry run: how many would be sent again, and the first few with their last error."""
    click.echo(f"Dry run for retrying '{p.slug}' — nothing is sent.")
    click.echo(f"  subject      {terminal_safe(p.subject)}")
    click.echo(f"  transport    {p.transport}")
    click.echo(f"  deferred     {p.deferred:,}")
    click.echo(f"  failed       {p.failed:,}  (retryable; permanent refusals stay failed)")
    if p.in_doubt:
        click.echo(f"  in flight    {p.in_doubt:,}  (left by a run that was killed: possibly delivered)")
    click.echo(f"  would send   {p.to_send:,}")
    for row in p.rows:
        click.echo(terminal_safe(f"  {row.state:10} {row.email}  attempts {row.attempts}  {row.last_error or ''}"))
    if p.to_send > len(p.rows) and p.rows:
        click.echo(f"  … {p.to_send - len(p.rows):,} more (digest status {p.slug} --all lists them)")
