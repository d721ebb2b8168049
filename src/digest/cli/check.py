"""`digest check ISSUE`: the pre-send gate on its own, for people, CI and scheduled jobs (--json)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from digest.cli.app import AppContext, display, pass_app
from digest.text import terminal_safe


def print_findings(report, *, err: bool = True) -> None:
    """Each finding on one line (errors red, warnings yellow) with its next step below it."""
    for finding in report.findings:  # findings quote list values: never let them steer the terminal
        click.secho(terminal_safe(finding.line()), fg={"error": "red", "warning": "yellow"}.get(finding.level),
                    err=err)
        if finding.hint:
            click.echo(f"        → {terminal_safe(finding.hint)}", err=err)


@click.command()
@click.argument("issue")
@click.option("--to", "list_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Subscriber list to check against (default: [paths] subscribers).")
@click.option("--tag", "tags", multiple=True, metavar="TAG",
              help="Check the audience with this tag (repeatable; default: the issue's audience).")
@click.option("--online", is_flag=True, help="Also try every link (HEAD/GET, 10 s timeout, 8 at a time).")
@click.option("--dns", "dns", is_flag=True,
              help="Also check the DNS for authenticated mail: SPF, DKIM, DMARC and the bounce domain's MX.")
@click.option("--dns-server", metavar="HOST:PORT",
              help="Ask this DNS server instead of the system resolver (split-horizon DNS, tests).")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON (for CI and scheduled jobs).")
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too (not only on errors).")
@pass_app
def check(app: AppContext, issue: str, list_path: Path | None, tags: tuple[str, ...], online: bool,
          dns: bool, dns_server: str | None, as_json: bool, strict: bool) -> None:
    """Run the pre-send checks on ISSUE and its list: merge fields, audience, size, images, links,
    unsubscribe and postal-address rules (with --dns: SPF, DKIM, DMARC, MX). Exit 1 when there are errors (or warnings, with --strict)."""
    from digest.checks.run import check_issue

    report = check_issue(app.settings, issue, list_path=list_path, tags=tags, online=online,
                         dns=dns or bool(dns_server), dns_server=dns_server)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        print_findings(report, err=False)
        reach = (f"{report.recipients:,} recipients in {display(report.list_path)}" if report.recipients is not None
                 else "no list read")
        click.echo(f"{report.slug}: {len(report.errors)} error(s), {len(report.warnings)} warning(s) · {reach} · "
                   f"largest HTML part {report.largest_html_bytes:,} bytes"
                   + (f" · {report.links_checked} links tried" if online else ""))
    if report.errors or (strict and report.warnings):
        raise click.exceptions.Exit(1)
