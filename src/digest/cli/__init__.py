"""The `digest` command line: each command parses its options, calls one library function, reports.

Heavy modules (mjml, premailer, requests, sqlite work) are imported inside commands so that
`digest --help` starts fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from digest import __version__
from digest.errors import DigestError


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
            from digest.config import load_settings

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
    from digest.compose.build import build_issue
    from digest.compose.issue import find_issue

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
    from digest.compose.scaffold import new_issue

    path = new_issue(app.settings, title)
    click.echo(f"created {_display(path)} — edit it, then: digest preview {path.stem}")


@cli.command()
@click.argument("issue", required=False)
@click.option("--port", type=click.IntRange(0, 65535), metavar="N",
              help="Port on 127.0.0.1 (default: 8040, or the next free one; 0 = any free port).")
@click.option("--no-open", is_flag=True, help="Do not open a browser; just print the address.")
@pass_app
def preview(app: AppContext, issue: str | None, port: int | None, no_open: bool) -> None:
    """Live preview of the issues (or ISSUE) in a browser, served on 127.0.0.1; re-renders on save."""
    from digest.preview.server import DEFAULT_PORT, open_browser, start_preview

    def changed(paths: list[Path]) -> None:
        click.echo("changed: " + ", ".join(_display(p) for p in paths[:5]) + (" …" if len(paths) > 5 else ""))

    def failed(what: str, details: str) -> None:
        click.secho(f"preview error: {what}", fg="red", err=True)
        if app.debug:
            click.echo(details, err=True)

    server = start_preview(app.settings, issue=issue, port=port, on_change=changed, on_error=failed)
    try:
        url = server.url + server.start_path
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
    from digest.audience.subscribers import ListReport, read_subscribers

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
        from digest.store.ledger import Ledger, ledger_path
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


# --- send, status, retry, unsubscribe, suppress (the send job; see sendjob.py) -------------------

def _send_options(f):
    """--rate / --connections / --transport / --resume-changed, shared by send and retry."""
    f = click.option("--transport", "transport_name", metavar="NAME",
                     help="Transport to use (default: [send] transport).")(f)
    f = click.option("--resume-changed", is_flag=True,
                     help="Resume even though the issue, the list or the settings changed since the send started.")(f)
    f = click.option("--connections", type=click.IntRange(min=1),
                     help="Parallel connections (default: [send] connections).")(f)
    f = click.option("--rate", type=click.FloatRange(min=0),
                     help="Messages per second over the whole run; 0 = as fast as possible (default: [send] rate).")(f)
    return f


@cli.command()
@click.argument("issue", required=False)
@click.option("--to", "list_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Subscriber list (default: [paths] subscribers).")
@click.option("--tag", "tags", multiple=True, metavar="TAG",
              help="Only subscribers with this tag (repeatable; any matches; default: the issue's audience).")
@click.option("--limit", type=click.IntRange(min=0), help="Send at most N messages in this run; the rest waits.")
@_send_options
@click.option("--yes", "-y", is_flag=True, help="Really send. Without it (and no terminal to ask): a dry run.")
@click.option("--test", "test_to", multiple=True, metavar="ADDRESS",
              help="Send only to ADDRESS (repeatable, or comma-separated) with the test subject prefix; "
                   "the ledger is not touched.")
@click.option("--due", is_flag=True,
              help="For cron/systemd timers: send every issue whose send_at has passed (no ISSUE, no prompt).")
@pass_app
def send(app: AppContext, issue: str | None, list_path: Path | None, tags: tuple[str, ...], limit: int | None,
         rate: float | None, connections: int | None, transport_name: str | None, resume_changed: bool,
         yes: bool, test_to: tuple[str, ...], due: bool) -> None:
    """Send ISSUE (slug or file) to the list — a dry run unless --yes (or you confirm at the prompt).

    Resumable: run the same command again after a crash or a stop and it carries on where it left
    off. Exit status: 0 all sent, 3 some failed or deferred (see `digest status`), 4 stopped early,
    75 already being sent by another process, 1 any other error.

    With --due (and no ISSUE): send or resume every issue whose send_at has passed and whose
    not_after has not, without asking; see `digest schedule`.
    """
    from digest.delivery.job import SendJob

    if due:
        extra = [flag for flag, given in (("ISSUE", issue), ("--to", list_path), ("--tag", tags), ("--limit", limit),
                                          ("--test", test_to), ("--resume-changed", resume_changed)) if given]
        if extra:
            raise click.UsageError(f"--due sends every due issue as its file says; it takes no {', '.join(extra)}.")
        _send_due(app, rate=rate, connections=connections, transport_name=transport_name)
        return
    if issue is None:
        raise click.UsageError("Missing argument 'ISSUE' (or use --due to send every issue that is due).")
    settings = app.settings
    job = SendJob(settings, issue, list_path=list_path, tags=tags, transport=transport_name)
    if test_to:
        addresses = [a.strip() for arg in test_to for a in arg.split(",") if a.strip()]
        _send_test(job, addresses)
        return
    note = _schedule_note(job.issue)
    if note:
        click.secho(f"note: {note}", fg="yellow", err=True)
    if not yes:
        preview = job.preview()
        _print_preview(preview)
        if not (sys.stdin.isatty() and sys.stdout.isatty()) or preview.to_send == 0:
            click.echo("\nDry run: nothing was sent. Add --yes to send.")
            return
        if not click.confirm(f"\nSend '{preview.slug}' to {preview.to_send:,} recipients now?", default=False):
            click.echo("Nothing was sent.")
            return
    if job.signer.is_dev and not job.transport_class().reaches_people:
        click.secho(f"note: {settings.unsubscribe.keys_env} is not set: the unsubscribe links in these "
                    f"{job.transport_name} files are signed with the public development key "
                    "(smtp and the API transports refuse to send without a real key).", fg="yellow", err=True)
    _run_send(app, job, limit=limit, rate=rate, connections=connections, resume_changed=resume_changed)


def _schedule_note(issue) -> str | None:
    """A by-hand send ignores send_at / not_after: say so when they would have held it back."""
    import datetime as dt

    now = dt.datetime.now(dt.timezone.utc)
    if issue.not_after is not None and issue.not_after <= now:
        return (f"'{issue.slug}' has not_after {issue.not_after.isoformat()}, which has passed: "
                "`digest send --due` would never send it; a send by hand still does.")
    if issue.send_at is not None and issue.send_at > now:
        return (f"'{issue.slug}' is scheduled for {issue.send_at.isoformat()}; a send by hand goes out now. "
                "To send it at its time, leave it to `digest send --due`.")
    return None


# --- scheduled sends: digest schedule, digest send --due (see schedule.py) --------------------------

@cli.command()
@pass_app
def schedule(app: AppContext) -> None:
    """List every issue and its state, by send_at: draft, scheduled (when; in how long), due,
    sending n/N, sent, failed (why) or expired. Times in this machine's zone (TZ) and as written."""
    from digest.schedule.due import describe, format_when, real_clock, schedule_entries

    now = real_clock()
    entries = schedule_entries(app.settings, now)
    click.echo(f"now {format_when(now, as_written=False)} · {len(entries)} issue{'s' if len(entries) != 1 else ''} in "
               f"{_display(app.settings.path('issues'))}")
    width = max([len(e.slug) for e in entries] + [5])
    roots = {str(app.settings.root) + "/", str(app.settings.root.resolve()) + "/"}
    for e in entries:
        colour = {"failed": "red", "expired": "red", "due": "yellow", "sending": "yellow", "sent": "green"}.get(e.state)
        detail = describe(e, now)
        for root in roots:  # file:line errors, relative to the project
            detail = detail.replace(root, "")
        click.echo(f"{e.slug:<{width}}  " + click.style(f"{e.state:<9}", fg=colour) + f"  {detail}")


def _send_due(app: AppContext, *, rate, connections, transport_name) -> None:
    """`digest send --due`: plain timestamped lines outside a terminal; exit code = run.exit_code."""
    import signal
    import threading
    from datetime import datetime

    from digest.cli.progress import make_progress
    from digest.schedule.due import format_when, humanize, real_clock, run_due
    from digest.delivery.loop import RunOptions

    settings = app.settings
    options = RunOptions.from_settings(settings.send, rate=rate, connections=connections)
    tty = sys.stderr.isatty()

    def line(text: str, err: bool = False, fg: str | None = None) -> None:
        stamp = "" if tty else datetime.now().astimezone().isoformat(timespec="seconds") + " "
        click.secho(stamp + text, err=err, fg=fg)

    bars: dict = {}

    def progress(entry, stats) -> None:
        if entry.slug not in bars:
            bars[entry.slug] = make_progress(stats.total, tty=tty, echo=click.echo)
        bars[entry.slug](stats)

    # SIGTERM (systemd stop, shutdown) and Ctrl-C: finish the batches in flight, record them, leave the
    # rest pending for the next run. A second signal interrupts (KeyboardInterrupt, as Ctrl-C in `digest send`).
    stop = threading.Event()

    def on_signal(signum, frame) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    def report(result) -> None:
        if result.slug in bars:
            bars.pop(result.slug).close()
        # Failures go to stderr: with stdout sent to a log file, cron mails exactly the failures.
        line(f"{result.slug}: {result.outcome} — {result.message}", err=not result.ok,
             fg=None if result.ok else "red")

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        run = run_due(settings, real_clock(), options, log=line, progress=progress, on_result=report, stop=stop,
                      transport=transport_name)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for bar in bars.values():
            bar.close()
    if run.busy is not None:
        # A normal overlap (the previous run is still sending): not an error, so cron stays quiet.
        line(f"another `digest send --due` run is in progress (pid {run.busy}); leaving it to that run")
        return
    if not run.results:
        now = real_clock()
        nxt = (f"next: {run.next.slug} at {format_when(run.next.send_at)}, {humanize(run.next.send_at - now)}"
               if run.next is not None else "nothing scheduled")
        broken = (f"; {len(run.broken_drafts)} issue file(s) do not read, see `digest schedule`"
                  if run.broken_drafts else "")
        line(f"nothing due ({nxt}{broken})")
    if run.exit_code:
        raise click.exceptions.Exit(run.exit_code)


@cli.command()
@click.argument("issue")
@_send_options
@pass_app
def retry(app: AppContext, issue: str, rate: float | None, connections: int | None, transport_name: str | None,
          resume_changed: bool) -> None:
    """Send ISSUE again to its deferred recipients and those that failed for a reason that may pass.

    Permanent refusals (e.g. 550 no such user) stay failed. Same exit codes as `digest send`.
    """
    from digest.delivery.job import SendJob

    job = SendJob(app.settings, issue, transport=transport_name)
    _run_send(app, job, limit=None, rate=rate, connections=connections, resume_changed=resume_changed, retry=True)


def _run_send(app: AppContext, job, *, limit, rate, connections, resume_changed, retry: bool = False) -> None:
    import time

    from digest.errors import DigestError as _DigestError
    from digest.cli.progress import make_progress
    from digest.delivery.loop import RunOptions

    options = RunOptions.from_settings(app.settings.send, limit=limit, rate=rate, connections=connections)
    tty = sys.stderr.isatty()
    state: dict = {}

    def on_start(report) -> None:
        total = report.prepared["in_doubt"] + report.prepared["deferred"] + report.prepared["failed"]
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
        if report.prepared["in_doubt"]:
            click.secho(f"  {report.prepared['in_doubt']:,} were in flight when an earlier run stopped: they may "
                        "have been delivered and are sent again (they may receive it twice)", fg="yellow")
        if report.prepared["suppressed"]:
            click.echo(f"  {report.prepared['suppressed']:,} suppressed since the send started: skipped")
        if total == 0:
            click.echo(f"  nothing left to send: {report.already_sent:,} already sent"
                       + (f", {report.counts['failed']:,} failed for good" if report.counts["failed"] else ""))
        state["progress"] = make_progress(total, tty=tty, echo=click.echo)

    def progress(stats) -> None:
        if "progress" in state:
            state["progress"](stats)

    started = time.monotonic()
    try:
        report = job.run(options, resume_changed=resume_changed, retry=retry, progress=progress, on_start=on_start,
                         on_audience=lambda path: click.echo(f"Reading {_display(path)} and fixing the audience "
                                                             "in the ledger …"))
    except _DigestError as exc:
        if "progress" in state:
            state["progress"].close()
        partial = getattr(exc, "report", None)
        if partial is not None:
            _print_summary(partial, time.monotonic() - started)
        raise
    state["progress"].close()
    _print_summary(report, time.monotonic() - started)
    if report.exit_code:
        raise click.exceptions.Exit(report.exit_code)


def _print_summary(report, elapsed: float) -> None:
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
    click.echo(f"  duration    {stats.duration:.1f} s ({rate:,.0f} messages/s)")
    left = report.counts["pending"] + report.counts["sending"] + report.counts["deferred"]
    if stats.stopped:
        click.secho(f"Stopped: {stats.stopped}", fg="red", err=True)
    for line in stats.last_errors[-3:]:
        click.echo(f"  last error: {line}", err=True)
    if left or stats.failed:
        click.echo(f"{left:,} still to send · details: digest status {report.send.slug}"
                   + (f" · then: digest retry {report.send.slug}" if report.counts["deferred"] or report.counts["failed"]
                      else ""))


def _print_preview(p) -> None:
    import email
    import email.policy

    click.echo(f"Dry run for '{p.slug}' — nothing is sent.")
    click.echo(f"  subject      {p.subject}")
    click.echo(f"  from         {p.from_addr}")
    click.echo(f"  transport    {p.transport}")
    tags = f"  (tags: {', '.join(p.tags)})" if p.tags else ""
    click.echo(f"  list         {_display(p.list_path)}{tags}")
    c = p.counts
    click.echo(f"  audience     {c.recipients:,} recipients")
    click.echo(f"  skipped      {c.suppressed:,} suppressed · {c.invalid:,} invalid · {c.duplicates:,} duplicates"
               + (f" · {c.not_in_audience:,} without the tags" if p.tags else ""))
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
        click.secho(f"  note: {note}", fg="yellow")
    if p.sample is None:
        return
    click.echo(f"\nSample message (to {p.sample_to}):")
    msg = email.message_from_bytes(p.sample, policy=email.policy.default)
    for name in ("From", "To", "Reply-To", "Subject", "Date", "Message-ID", "List-Id", "List-Unsubscribe",
                 "List-Unsubscribe-Post"):
        if msg[name]:
            click.echo(f"  {name}: {msg[name]}")
    body = msg.get_body(("plain",))
    text = body.get_content() if body is not None else ""
    lines = text.strip("\n").splitlines()
    click.echo("")
    for line in lines[:14]:
        click.echo(f"  | {line}")
    if len(lines) > 14:
        click.echo(f"  | … ({len(lines) - 14} more lines; `digest build {p.slug}` writes the whole message)")


def _send_test(job, addresses: list[str]) -> None:
    results = job.send_test(addresses)
    bad = 0
    for msg, res in results:
        ok = res.status.value == "sent"
        bad += not ok
        detail = res.provider_id or res.code or "" if ok else f"{res.code or ''} {res.reason}".strip()
        click.echo(f"{'sent' if ok else res.status.value:8} {msg.to_email}  “{msg.subject}”"
                   + (f"  ({detail})" if detail else ""))
    click.echo(f"Test send via {job.transport_name}: {len(results) - bad} of {len(results)} accepted; "
               "the ledger was not touched.")
    if bad:
        raise click.exceptions.Exit(3)


@cli.command()
@click.argument("issue")
@click.option("--all", "show_all", is_flag=True, help="List every failed/deferred recipient (default: the first 50).")
@pass_app
def status(app: AppContext, issue: str, show_all: bool) -> None:
    """Show ISSUE's send in the ledger: counts, and the failed and deferred recipients with their errors."""
    from digest.errors import LedgerError
    from digest.store.ledger import Ledger, ledger_path
    from digest.delivery.job import SendLock

    settings = app.settings
    path = ledger_path(settings)
    if not path.exists():
        raise LedgerError(f"no ledger at {path}: nothing has been sent from this project yet.")
    with Ledger(path, readonly=True) as ledger:
        send = ledger.get_send(issue)
        if send is None:
            from digest.compose.issue import find_issue, load_issue

            slug = load_issue(find_issue(settings, issue)).slug
            send = ledger.get_send(slug)
            if send is None:
                raise LedgerError(f"issue '{slug}' has not been sent (no send in {path}).",
                                  f"dry run: digest send {slug}")
        counts = ledger.counts(send.id)
        transient = ledger.failed_transient(send.id)
        in_doubt = ledger.in_doubt_sent(send.id)
        rows = ledger.recipients(send.id, ["failed", "deferred", "sending"], limit=None if show_all else 50)
    running = SendLock(settings, send.slug).held_by() if send.state != "finished" else None
    now = f" — sending now (process {running or 'unknown'})" if running is not None else ""
    click.echo(f"{send.slug}: {send.state}  (started {send.started_at}"
               + (f", finished {send.finished_at}" if send.finished_at else "") + ")" + now)
    click.echo(f"  subject     {send.subject}")
    click.echo(f"  audience    {send.audience:,}  from {send.list_path}")
    click.echo(f"  sent        {counts['sent']:,}" + (f"  ({in_doubt:,} re-sent after an interrupted run)" if in_doubt else ""))
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
    if rows:
        click.echo("")
        for r in rows:
            kind = r.state + ("" if r.state != "failed" else (" (permanent)" if r.permanent else " (retryable)"))
            click.echo(f"  {kind:22} {r.email}  attempts {r.attempts}  {r.last_error or ''}")
        total = counts["failed"] + counts["deferred"] + counts["sending"]
        if not show_all and total > len(rows):
            click.echo(f"  … {total - len(rows):,} more (--all lists them)")
    if counts["deferred"] or transient:
        click.echo(f"\nRe-send the deferred and retryable ones with: digest retry {send.slug}")


@cli.command()
@click.argument("emails", nargs=-1)
@click.option("--token", metavar="TOKEN", help="A signed token from an unsubscribe link (verified first).")
@click.option("--reason", default="unsubscribed", show_default=True, help="Reason recorded with the address.")
@pass_app
def unsubscribe(app: AppContext, emails: tuple[str, ...], token: str | None, reason: str) -> None:
    """Add EMAIL(s) to the suppression list, or the address in a signed --token (for a one-click endpoint)."""
    from digest.store.ledger import Ledger

    settings = app.settings
    if not emails and not token:
        raise click.UsageError("give one or more EMAIL addresses, or --token TOKEN")
    addresses = list(emails)
    source = "manual"
    if token:
        from email.utils import parseaddr

        from digest.delivery.personalize import _slugify
        from digest.audience.tokens import KeyRing

        nl = settings.newsletter
        domain = parseaddr(nl.from_)[1].rpartition("@")[2].lower()
        newsletter_id = nl.list_id or f"{_slugify(nl.name)}.{domain}"  # as Personalizer signs it
        _, address = KeyRing.for_settings(settings).verify(token, newsletter_id)
        addresses.append(address)
        source = "token"
    with Ledger.for_settings(settings) as ledger:
        for address in addresses:
            new = ledger.suppress(address, reason, source=source)
            click.echo(f"{'unsubscribed' if new else 'already suppressed'}: {address}")


@cli.group()
def suppress() -> None:
    """The suppression list: addresses no send ever goes to (unsubscribes, permanent bounces)."""


@suppress.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--reason", default="imported", show_default=True, help="Reason when the file has none.")
@pass_app
def suppress_import(app: AppContext, file: Path, reason: str) -> None:
    """Add the addresses in FILE (CSV: email[,reason]; a header row is optional)."""
    import csv

    from digest.errors import SubscriberError
    from digest.store.ledger import Ledger

    rows: list[tuple[str, str]] = []
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SubscriberError(f"{file}: not UTF-8 text (byte {exc.start}).",
                              "save it as CSV UTF-8: email[,reason] per line") from None
    for line_no, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or not row[0].strip():
            continue
        email_cell = row[0].strip()
        if line_no == 1 and "@" not in email_cell:
            continue  # header row
        if "@" not in email_cell:
            raise SubscriberError(f"{file}:{line_no}: {email_cell!r} is not an email address.",
                                  "the first column must hold the address")
        rows.append((email_cell, (row[1].strip() if len(row) > 1 and row[1].strip() else reason)))
    with Ledger.for_settings(app.settings) as ledger:
        new = ledger.suppress_many(rows, source=f"import:{file.name}")
    click.echo(f"{len(rows):,} addresses read from {_display(file)}: {new:,} added, {len(rows) - new:,} already there")


@suppress.command("export")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@pass_app
def suppress_export(app: AppContext, file: Path | None) -> None:
    """Write the suppression list as CSV (email,reason,source,created_at) to FILE or standard output."""
    import csv

    from digest.store.ledger import Ledger, ledger_path

    path = ledger_path(app.settings)
    out = open(file, "w", newline="", encoding="utf-8") if file else sys.stdout
    try:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["email", "reason", "source", "created_at"])
        n = 0
        if path.exists():
            with Ledger(path, readonly=True) as ledger:
                for row in ledger.iter_suppressions():
                    writer.writerow(row)
                    n += 1
    finally:
        if file:
            out.close()
    if file:
        click.echo(f"wrote {n:,} suppressed addresses to {_display(file)}")


@suppress.command("list")
@pass_app
def suppress_list(app: AppContext) -> None:
    """Show the suppression list."""
    from digest.store.ledger import Ledger, ledger_path

    path = ledger_path(app.settings)
    n = 0
    if path.exists():
        with Ledger(path, readonly=True) as ledger:
            for email_addr, reason, source, created in ledger.iter_suppressions():
                click.echo(f"{created[:19]}  {email_addr:40}  {source:10}  {reason}")
                n += 1
    click.echo(f"{n:,} suppressed address{'es' if n != 1 else ''}")


@suppress.command("remove")
@click.argument("emails", nargs=-1, required=True)
@pass_app
def suppress_remove(app: AppContext, emails: tuple[str, ...]) -> None:
    """Take EMAIL(s) off the suppression list (e.g. someone subscribed again)."""
    from digest.store.ledger import Ledger

    with Ledger.for_settings(app.settings) as ledger:
        for address in emails:
            click.echo(f"{'removed' if ledger.unsuppress(address) else 'not suppressed'}: {address}")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the CLI and turn DigestErrors into short messages."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        # Without standalone mode click *returns* the code of a raised click.exceptions.Exit.
        code = cli.main(args=argv, prog_name="digest", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
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
