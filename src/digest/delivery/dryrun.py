"""The dry run: what `digest send --yes` would do, with one sample message; nothing written or sent."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from digest.delivery.audience import AudienceCounts, subscriber_from_row
from digest.delivery.mime import build_mime
from digest.errors import DigestError, LedgerError
from digest.store.ledger import Ledger, ledger_path
from digest.store.rows import (
    DEFERRED,
    FAILED,
    PENDING,
    SENDING,
    SENT,
    RecipientRow,
    SendRow,
)

if TYPE_CHECKING:  # pragma: no cover
    from digest.delivery.job import SendJob


@dataclass
class DryRun:
    """The dry run: what `digest send --yes` would do."""

    slug: str
    subject: str
    from_addr: str
    transport: str
    list_path: Path
    tags: tuple[str, ...]
    counts: AudienceCounts
    already_sent: int = 0
    to_send: int = 0
    send: SendRow | None = None
    ledger_counts: dict | None = None
    changes: list[str] = field(default_factory=list)
    sample: bytes | None = None
    sample_to: str = ""
    notes: list[str] = field(default_factory=list)
    dkim: str = ""          # whether the messages will be DKIM-signed, and over which headers


def dry_run(job: "SendJob") -> DryRun:
    """Count the audience and build one sample message; writes nothing, sends nothing."""
    counts = AudienceCounts()
    send: SendRow | None = None
    ledger_counts = None
    suppressed: set[str] = set()
    notes: list[str] = []
    if job.signer.is_dev:
        notes.append(f"{job.settings.unsubscribe.keys_env} is not set: the sample's unsubscribe link uses the "
                     "development key; a real send (--yes) through a transport that reaches people "
                     "refuses to run until it is set")
    path = ledger_path(job.settings)
    if path.exists():
        with Ledger(path, readonly=True) as ledger:
            suppressed = ledger.suppressed_keys()
            send = ledger.get_send(job.slug)
            if send is not None:
                ledger_counts = ledger.counts(send.id)
    transport = _describe_transport(job)
    first = None
    # check=False: a row without a merge value is counted here and named by the pre-send checks.
    for row in job.audience(suppressed, counts, check=False):  # the whole list: every count, one sample
        first = first or row
    preview = DryRun(slug=job.slug, subject=job.issue.subject, from_addr=job.personalizer.from_addr,
                     transport=transport, list_path=job.list_path, tags=job.tags, counts=counts,
                     send=send, ledger_counts=ledger_counts, notes=notes,
                     dkim=_signing_plan(job))
    if first is not None:
        row = RecipientRow(id=0, key=first[0], email=first[1], name=first[2], fields=first[3],
                           tags=first[4], line=first[5])
        try:
            msg = job.personalizer.message_for(subscriber_from_row(row), 0)
            preview.sample, preview.sample_to = build_mime(msg), msg.to_email
        except DigestError as exc:
            preview.notes.append(f"no sample message: {exc.message}")
    if send is not None and ledger_counts is not None:
        preview.already_sent = ledger_counts[SENT]
        preview.to_send = ledger_counts[PENDING] + ledger_counts[SENDING] + ledger_counts[DEFERRED]
        preview.changes = job.fingerprints().changes(send)
    else:
        preview.to_send = counts.recipients
    return preview


@dataclass
class RetryDryRun:
    """What `digest retry --yes` would send again: deferred, retryable failures, rows left in doubt."""

    slug: str
    subject: str
    transport: str
    deferred: int = 0
    failed: int = 0       # failed for a reason that may pass (not refused for good)
    in_doubt: int = 0     # left `sending` by a run that was killed: possibly delivered
    rows: list[RecipientRow] = field(default_factory=list)  # the first few, with their last error

    @property
    def to_send(self) -> int:
        """How many recipients the retry would send to."""
        return self.deferred + self.failed + self.in_doubt


def retry_dry_run(job: "SendJob", *, show: int = 5) -> RetryDryRun:
    """Count what a retry would send and list the first few; reads the ledger only, sends nothing."""
    path = ledger_path(job.settings)
    send = None
    if path.exists():
        with Ledger(path, readonly=True) as ledger:
            send = ledger.get_send(job.slug)
            if send is not None:
                counts = ledger.counts(send.id)
                transient = ledger.failed_transient(send.id)
                rows = ledger.recipients(send.id, [DEFERRED, SENDING], limit=show)
                if len(rows) < show and transient:  # permanent refusals are not retried: skip them
                    failed = ledger.recipients(send.id, [FAILED], limit=show + counts[FAILED] - transient)
                    rows += [r for r in failed if not r.permanent][: show - len(rows)]
    if send is None:
        raise LedgerError(f"issue '{job.slug}' has never been sent: nothing to retry.",
                          f"send it first: digest send {job.slug} --yes")
    return RetryDryRun(slug=job.slug, subject=send.subject, transport=_describe_transport(job),
                       deferred=counts[DEFERRED], failed=transient, in_doubt=counts[SENDING], rows=rows)


def _signing_plan(job: "SendJob") -> str:
    from digest.delivery.dkim import signing_plan

    try:
        return signing_plan(job.settings, job.transport_class())
    except DigestError as exc:  # an unknown transport: _describe_transport says so
        return f"unknown ({exc.message})"


def _describe_transport(job: "SendJob") -> str:
    try:
        return job.transport_class()(job.settings, connections=1).describe()
    except DigestError as exc:
        return f"{job.transport_name} — NOT USABLE: {exc.message}"
