"""The pre-send gate: every check on one issue (and its list), and the rule that stops a send.

`digest check`, `digest build`, the preview, the dry run, `digest send` and `digest send --due` all
call `check_rendered` (or `check_issue`, which renders first), so they report the same findings.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from digest.checks.audience import check_list
from digest.checks.content import check_fields, check_merge_syntax
from digest.checks.feedback import check_feedback
from digest.checks.findings import CheckReport
from digest.checks.markup import (
    check_compliance,
    check_image_files,
    check_images,
    check_links,
    check_size,
    elements,
)
from digest.errors import CheckError

if TYPE_CHECKING:  # pragma: no cover
    from digest.compose.issue import Issue
    from digest.compose.render import Rendered
    from digest.config import Settings
    from digest.delivery.personalize import Personalizer


def check_rendered(settings: "Settings", issue: "Issue", rendered: "Rendered", personalizer: "Personalizer", *,
                   list_path: Path | None, tags: Sequence[str] = (), read_list: bool = True,
                   online: bool = False) -> CheckReport:
    """Check an issue already rendered. `read_list` False: the list's header only (a resume, the preview)."""
    report = CheckReport(slug=issue.slug, list_path=str(list_path or ""))
    check_merge_syntax(report, issue, rendered, settings)
    parsed = elements(rendered.html.raw)
    check_images(report, issue, settings, parsed)
    static_links = check_links(report, issue, settings, parsed)
    headers = dict(personalizer.headers_for(personalizer.unsubscribe_url("reader@example.org")))
    check_compliance(report, issue, rendered, settings, parsed, headers)
    check_feedback(report, settings, issue.slug)
    columns = _list_columns(report, issue, settings, personalizer, list_path, tags, read_list)
    if columns is not None:
        check_fields(report, issue, rendered, settings, columns)
    if report.recipients is None:
        _sample_size(report, personalizer)
    if online:
        from digest.checks.online import check_links_online

        check_links_online(report, static_links)
    return report


def _list_columns(report: CheckReport, issue: "Issue", settings: "Settings", personalizer: "Personalizer",
                  list_path: Path | None, tags: Sequence[str], read_list: bool) -> tuple[str, ...] | None:
    """The list's columns (None when there is no list to compare with); the whole list when `read_list`."""
    if list_path is None or not list_path.is_file():
        return None
    from digest.audience.subscribers import ListReport, read_subscribers

    if read_list:
        from digest.store.suppressions import suppressed_keys

        keys, _note = suppressed_keys(settings)
        return check_list(report, issue, settings, personalizer, list_path, tags, keys).columns
    header = ListReport()
    next(iter(read_subscribers(list_path, report=header)), None)  # the header and one row, no more
    return header.columns


def _sample_size(report: CheckReport, personalizer: "Personalizer") -> None:
    """Without the list, size the example reader's copy (field defaults; the list may make it larger)."""
    from digest.audience.lookup import example_subscriber
    from digest.delivery.mime import build_mime
    from digest.errors import MergeError

    try:
        message = personalizer.message_for(example_subscriber(), 0)
    except MergeError:
        return  # a field without a default: the field findings say so
    check_size(report, len(message.html.encode("utf-8")), len(build_mime(message)), "the example reader")


def check_issue(settings: "Settings", issue_ref: str, *, list_path: Path | None = None,
                tags: Sequence[str] | None = None, online: bool = False, dns: bool = False,
                dns_server: str | None = None) -> CheckReport:
    """Render ISSUE and check it with its list (default: [paths] subscribers) — `digest check`;
    with `dns`, also the DNS records authenticated mail needs (checks/dns.py)."""
    report = _check_issue(settings, issue_ref, list_path=list_path, tags=tags, online=online)
    if dns:
        from digest.checks.dns import check_dns

        check_dns(report, settings, server=dns_server)
    return report


def _check_issue(settings: "Settings", issue_ref: str, *, list_path: Path | None, tags: Sequence[str] | None,
                 online: bool) -> CheckReport:
    from digest.audience.tokens import KeyRing
    from digest.compose.issue import find_issue, load_issue
    from digest.compose.render import render_issue
    from digest.delivery.personalize import Personalizer

    issue = load_issue(find_issue(settings, issue_ref))
    missing = CheckReport(slug=issue.slug)
    check_image_files(missing, issue, settings)
    if missing.findings:
        return missing  # it cannot render: these come first, with their lines
    rendered = render_issue(issue, settings)
    path = list_path or settings.path("subscribers")
    personalizer = Personalizer(rendered, settings, KeyRing.for_settings(settings, allow_dev_key=True), source=path)
    return check_rendered(settings, issue, rendered, personalizer, list_path=path,
                          tags=tuple(tags) if tags else issue.audience, online=online)


def accepted_codes(settings: "Settings", issue: "Issue") -> set[str]:
    """Warning codes a send of this issue may go out with: [send] accept_warnings plus the issue's own."""
    return {str(c).lower() for c in settings.send.accept_warnings} | set(issue.accept_warnings)


def require_clean(report: CheckReport, accepted: set[str] | bool) -> None:
    """Raise CheckError when errors were found, or warnings that are not accepted; nothing else."""
    blocking = report.errors + report.unaccepted_warnings(accepted)
    if not blocking:
        return
    lines = "\n".join(f"  {f.line()}" for f in blocking[:10])
    more = f"\n  … and {len(blocking) - 10} more" if len(blocking) > 10 else ""
    errors, warnings = len(report.errors), len(blocking) - len(report.errors)
    what = " and ".join(part for part in (f"{errors} error{'s' if errors != 1 else ''}" if errors else "",
                                          f"{warnings} warning{'s' if warnings != 1 else ''}" if warnings else "")
                        if part)
    hint = f"fix them (details: digest check {report.slug})"
    if warnings and not errors:
        codes = sorted({f.code for f in blocking})
        hint += (f"; to send with these warnings: --accept-warnings, or accept_warnings: [{', '.join(codes)}] "
                 "in the issue file")
    raise CheckError(f"the pre-send checks stop '{report.slug}': {what}.\n{lines}{more}", hint)





def send_checks(job) -> CheckReport:
    """The checks for a real send of a SendJob: the whole list for a new send, its header on a resume
    (the audience was fixed in the ledger when the send started)."""
    from digest.store.ledger import Ledger, ledger_path

    resuming = False
    path = ledger_path(job.settings)
    if path.is_file():
        with Ledger(path, readonly=True) as ledger:
            resuming = ledger.get_send(job.slug) is not None
    return check_rendered(job.settings, job.issue, job.rendered, job.personalizer, list_path=job.list_path,
                          tags=job.tags, read_list=not resuming)


def _sync_before_send(job) -> None:
    """[feedback] sync_before_send: pull the provider's suppressions first, so this send leaves them out."""
    from digest.feedback.sync import SYNCABLE, sync_suppressions

    if job.settings.feedback.sync_before_send and job.transport_name in SYNCABLE:
        sync_suppressions(job.settings, job.transport_name)


def gate(job, *, accept_warnings: bool = False, report: CheckReport | None = None) -> CheckReport:
    """Run (or take) the send checks and raise CheckError when they stop the send; returns the report."""
    _sync_before_send(job)
    report = report or send_checks(job)
    require_clean(report, True if accept_warnings else accepted_codes(job.settings, job.issue))
    return report
