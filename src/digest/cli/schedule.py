"""Scheduled sends: `digest schedule` (every issue's state) and the `digest send --due` runner's output."""

from __future__ import annotations

import sys

import click

from digest.cli.app import AppContext, display, pass_app
from digest.cli.signals import stop_on_signals
from digest.clock import format_when, humanize, log_stamp, utc_now
from digest.text import terminal_safe

STATE_WIDTH = len("interrupted")


@click.command()
@pass_app
def schedule(app: AppContext) -> None:
    """List every issue and its state, by send_at: draft, scheduled (when; in how long), due,
    sending n/N, interrupted, sent, failed (why) or expired. Times in this machine's zone (TZ) and as written."""
    from digest.status import describe, issue_statuses

    now = utc_now()
    entries = issue_statuses(app.settings, now)
    click.echo(f"now {format_when(now, as_written=False)} · {len(entries)} issue{'s' if len(entries) != 1 else ''} in "
               f"{display(app.settings.path('issues'))}")
    width = max([len(e.slug) for e in entries] + [5])
    roots = {str(app.settings.root) + "/", str(app.settings.root.resolve()) + "/"}
    for e in entries:
        colour = {"failed": "red", "expired": "red", "due": "yellow", "sending": "yellow", "interrupted": "yellow",
                  "sent": "green"}.get(e.state)
        detail = describe(e, now)
        for root in roots:  # file:line errors, relative to the project
            detail = detail.replace(root, "")
        click.echo(f"{e.slug:<{width}}  " + click.style(f"{e.state:<{STATE_WIDTH}}", fg=colour)
                   + f"  {terminal_safe(detail)}")  # errors quote the files; notes a provider


def send_due(app: AppContext, *, rate, connections, transport_name, accept_warnings: bool = False) -> None:
    """`digest send --due`: plain timestamped lines outside a terminal; exit code = run.exit_code.

    SIGTERM (systemd stop, shutdown) and Ctrl-C finish the batches in flight, record them and leave
    the rest pending for the next run.
    """
    from digest.cli.progress import make_progress
    from digest.delivery.options import RunOptions
    from digest.schedule.due import run_due

    options = RunOptions.from_settings(app.settings.send, rate=rate, connections=connections,
                                       accept_all_warnings=accept_warnings or None)
    tty = sys.stderr.isatty()
    line = _stamped_lines(tty)
    bars: dict = {}
    warned: list[bool] = []

    def progress(entry, stats) -> None:
        if entry.slug not in bars:
            bars[entry.slug] = make_progress(stats.total, tty=tty, echo=click.echo)
        bars[entry.slug](stats)

    unsigned = _unsigned_warning(app.settings, transport_name)

    def report(result) -> None:
        if result.report is not None and unsigned and not warned:
            # Once per run, and only when something went out: a quiet cron run stays quiet.
            warned.append(True)
            line(f"warning: {unsigned}", err=True, fg="yellow")
        if result.slug in bars:
            bars.pop(result.slug).close()
        # Failures go to stderr: with stdout sent to a log file, cron mails exactly the failures.
        line(f"{result.slug}: {result.outcome} — {result.message}", err=not result.ok,
             fg=None if result.ok else "red")

    try:
        with stop_on_signals() as stop:
            run = run_due(app.settings, utc_now(), options, log=line, progress=progress, on_result=report,
                          stop=stop, transport=transport_name)
    finally:
        for bar in bars.values():
            bar.close()
    _print_due_run(run, line)
    if run.exit_code:
        raise click.exceptions.Exit(run.exit_code)


def _unsigned_warning(settings, transport_name: str | None) -> str | None:
    """The "digest does not DKIM-sign" warning for the transport this run sends with, if it applies."""
    from digest.delivery.dkim import unsigned_warning
    from digest.transports import transport_class

    return unsigned_warning(settings, transport_class(transport_name or settings.send.transport))


def _stamped_lines(tty: bool):
    """echo with a local ISO timestamp in front when the output goes to a log (not a terminal)."""
    def line(text: str, err: bool = False, fg: str | None = None) -> None:
        stamp = "" if tty else log_stamp() + " "
        click.secho(stamp + terminal_safe(text, multiline=True), err=err, fg=fg)  # results quote errors
    return line


def _print_due_run(run, line) -> None:
    """The closing line of a --due run that sent nothing: another run holds the lock, or nothing was due."""
    if run.busy is not None:
        # A normal overlap (the previous run is still sending): not an error, so cron stays quiet.
        line(f"another `digest send --due` run is in progress (pid {run.busy}); leaving it to that run")
        return
    if not run.results:
        now = utc_now()
        nxt = (f"next: {run.next.slug} at {format_when(run.next.send_at)}, {humanize(run.next.send_at - now)}"
               if run.next is not None else "nothing scheduled")
        broken = (f"; {len(run.broken_drafts)} issue file(s) do not read, see `digest schedule`"
                  if run.broken_drafts else "")
        line(f"nothing due ({nxt}{broken})")
