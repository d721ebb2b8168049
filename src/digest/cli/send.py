"""Sending: `digest send` (dry run, real send, --test, --due) and `digest retry`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from digest.cli.app import AppContext, display, pass_app
from digest.cli.check import print_findings
from digest.cli.report import (
    print_dry_run,
    print_retry_dry_run,
    print_start,
    print_summary,
)
from digest.cli.schedule import send_due
from digest.cli.signals import stop_on_signals
from digest.clock import utc_now
from digest.text import terminal_safe


def send_options(f):
    """--rate / --connections / --transport / --resume-changed, shared by send and retry."""
    f = click.option("--accept-warnings", is_flag=True,
                     help="Send even though the pre-send checks found warnings (errors always stop a send).")(f)
    f = click.option("--transport", "transport_name", metavar="NAME",
                     help="Transport to use (default: [send] transport).")(f)
    f = click.option("--resume-changed", is_flag=True,
                     help="Resume even though the issue, the list or the settings changed since the send started.")(f)
    f = click.option("--connections", type=click.IntRange(min=1),
                     help="Parallel connections (default: [send] connections).")(f)
    f = click.option("--rate", type=click.FloatRange(min=0),
                     help="Messages per second over the whole run; 0 = as fast as possible (default: [send] rate).")(f)
    return f




@click.command()
@click.argument("issue", required=False)
@click.option("--to", "list_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Subscriber list (default: [paths] subscribers).")
@click.option("--tag", "tags", multiple=True, metavar="TAG",
              help="Only subscribers with this tag (repeatable; any matches; default: the issue's audience).")
@click.option("--limit", type=click.IntRange(min=0), help="Send at most N messages in this run; the rest waits.")
@send_options
@click.option("--yes", "-y", is_flag=True, help="Really send. Without it (and no terminal to ask): a dry run.")
@click.option("--test", "test_to", multiple=True, metavar="ADDRESS",
              help="Send only to ADDRESS (repeatable, or comma-separated) with the test subject prefix; "
                   "the ledger is not touched.")
@click.option("--due", is_flag=True,
              help="For cron/systemd timers: send every issue whose send_at has passed (no ISSUE, no prompt).")
@pass_app
def send(app: AppContext, issue: str | None, list_path: Path | None, tags: tuple[str, ...], limit: int | None,
         rate: float | None, connections: int | None, transport_name: str | None, resume_changed: bool,
         accept_warnings: bool, yes: bool, test_to: tuple[str, ...], due: bool) -> None:
    """Send ISSUE (slug or file) to the list — a dry run unless --yes (or you confirm at the prompt).

    Resumable: run the same command again after a crash or a stop and it carries on where it left
    off. Exit status: 0 all sent, 3 some failed or deferred (see `digest status`), 4 stopped early,
    75 already being sent by another process, 1 any other error.

    With --due (and no ISSUE): send or resume every issue whose send_at has passed and whose
    not_after has not, without asking; see `digest schedule`.
    """
    from digest.delivery.dryrun import dry_run
    from digest.delivery.job import SendJob

    if due:
        extra = [flag for flag, given in (("ISSUE", issue), ("--to", list_path), ("--tag", tags), ("--limit", limit),
                                          ("--test", test_to), ("--resume-changed", resume_changed)) if given]
        if extra:
            raise click.UsageError(f"--due sends every due issue as its file says; it takes no {', '.join(extra)}.")
        send_due(app, rate=rate, connections=connections, transport_name=transport_name,
                 accept_warnings=accept_warnings)
        return
    if issue is None:
        raise click.UsageError("Missing argument 'ISSUE' (or use --due to send every issue that is due).")
    settings = app.settings
    job = SendJob(settings, issue, list_path=list_path, tags=tags, transport=transport_name)
    if test_to:
        addresses = [a.strip() for arg in test_to for a in arg.split(",") if a.strip()]
        _send_test(job, addresses)
        return
    note = job.schedule_note(utc_now())
    if note:
        click.secho(f"note: {note}", fg="yellow", err=True)
    if not yes:
        preview = dry_run(job)
        print_dry_run(preview)
        checks = _dry_run_checks(job, accept_warnings)
        if not _confirmed(f"Send '{preview.slug}' to {preview.to_send:,} recipients now?", preview.to_send):
            return
        gate(job, accept_warnings=accept_warnings, report=checks)
    else:
        _print_accepted(gate(job, accept_warnings=accept_warnings))
    if job.signer.is_dev and not job.transport_class().reaches_people:
        click.secho(f"note: {settings.unsubscribe.keys_env} is not set: the unsubscribe links in these "
                    f"{job.transport_name} files are signed with the public development key "
                    "(smtp and the API transports refuse to send without a real key).", fg="yellow", err=True)
    from digest.delivery.dkim import unsigned_warning

    unsigned = unsigned_warning(settings, job.transport_class())
    if unsigned:
        click.secho(f"warning: {unsigned}", fg="yellow", err=True)
    run_send(app, job, limit=limit, rate=rate, connections=connections, resume_changed=resume_changed)


def _dry_run_checks(job, accept_warnings: bool):
    """The pre-send checks after the dry run; exit 1 here when a real send would be refused."""
    from digest.checks.run import accepted_codes, send_checks

    report = send_checks(job)
    click.echo(f"\nPre-send checks: {len(report.errors)} error(s), {len(report.warnings)} warning(s)")
    print_findings(report, err=False)
    blocking = report.errors + report.unaccepted_warnings(True if accept_warnings else
                                                          accepted_codes(job.settings, job.issue))
    if blocking:
        click.secho(f"\nDry run: nothing was sent. A real send would be refused ({len(blocking)} finding(s) "
                    f"above); details: digest check {job.slug}", fg="red", err=True)
        raise click.exceptions.Exit(1)
    return report


def gate(job, **kw):
    """The pre-send checks' verdict on a real send (imported here: `digest --help` stays fast)."""
    from digest.checks.run import gate as run_gate

    return run_gate(job, **kw)


def _print_accepted(report) -> None:
    """Warnings a send goes out with (accepted): said once, on stderr, so logs keep them."""
    for finding in report.warnings:
        click.secho(terminal_safe(f"accepted {finding.line()}"), fg="yellow", err=True)


def _confirmed(question: str, to_send: int) -> bool:
    """After a dry run: ask in a terminal (False: nothing is sent); elsewhere say how to send."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()) or to_send == 0:
        click.echo("\nDry run: nothing was sent. Add --yes to send.")
        return False
    if not click.confirm(f"\n{question}", default=False):
        click.echo("Nothing was sent.")
        return False
    return True


@click.command()
@click.argument("issue")
@send_options
@click.option("--yes", "-y", is_flag=True, help="Really send. Without it (and no terminal to ask): a dry run.")
@pass_app
def retry(app: AppContext, issue: str, rate: float | None, connections: int | None, transport_name: str | None,
          resume_changed: bool, accept_warnings: bool, yes: bool) -> None:
    """Send ISSUE again to its deferred recipients and those that failed for a reason that may pass
    — a dry run unless --yes (or you confirm at the prompt), as with `digest send`.

    Permanent refusals (e.g. 550 no such user) stay failed. Same exit codes as `digest send`.
    """
    from digest.delivery.dryrun import retry_dry_run
    from digest.delivery.job import SendJob

    job = SendJob(app.settings, issue, transport=transport_name)
    if not yes:
        preview = retry_dry_run(job)
        print_retry_dry_run(preview)
        if not _confirmed(f"Send '{preview.slug}' again to {preview.to_send:,} recipients now?", preview.to_send):
            return
    _print_accepted(gate(job, accept_warnings=accept_warnings))
    run_send(app, job, limit=None, rate=rate, connections=connections, resume_changed=resume_changed, retry=True)


def run_send(app: AppContext, job, *, limit, rate, connections, resume_changed, retry: bool = False) -> None:
    """Run the job with a start line, a progress display and a summary; exit with the run's code."""
    from digest.cli.progress import make_progress
    from digest.delivery.options import RunOptions

    options = RunOptions.from_settings(app.settings.send, limit=limit, rate=rate, connections=connections)
    state: dict = {}

    def on_start(report) -> None:
        total = print_start(report, job, options, retry=retry, limit=limit)
        state["progress"] = make_progress(total, tty=sys.stderr.isatty(), echo=click.echo)

    def progress(stats) -> None:
        if "progress" in state:
            state["progress"](stats)

    try:
        with stop_on_signals() as stop:  # SIGTERM (timeout, docker stop, systemd) stops like Ctrl-C
            report = job.run(options, resume_changed=resume_changed, retry=retry, progress=progress,
                             on_start=on_start, stop=stop,
                             on_audience=lambda path: click.echo(f"Reading {display(path)} and fixing the "
                                                                 "audience in the ledger …"))
    finally:
        if "progress" in state:
            state["progress"].close()
    print_summary(report)
    if report.error is not None:
        raise report.error  # the summary first: what was done before it stopped
    if report.exit_code:
        raise click.exceptions.Exit(report.exit_code)


def _send_test(job, addresses: list[str]) -> None:
    """Send to the test addresses and list what each one got."""
    from digest.delivery.testsend import send_test
    from digest.text import terminal_safe

    results = send_test(job, addresses)
    bad = 0
    for msg, res, on_list in results:
        ok = res.status.value == "sent"
        bad += not ok
        detail = res.provider_id or res.code or "" if ok else f"{res.code or ''} {res.reason}".strip()
        # the subject carries list fields, the detail a provider's words
        click.echo(terminal_safe(f"{'sent' if ok else res.status.value:8} {msg.to_email}  “{msg.subject}”"
                                 + (f"  ({detail})" if detail else "")
                                 + ("" if on_list else "  · not on the list: a sample reader's fields")))
    click.echo(f"Test send via {job.transport_name}: {len(results) - bad} of {len(results)} accepted; "
               "the ledger was not touched.")
    if bad:
        raise click.exceptions.Exit(3)
