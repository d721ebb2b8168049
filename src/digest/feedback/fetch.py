"""`digest bounces fetch`: read the bounce mailbox, record what each bounce says, move the handled mail.

Events are recorded before their messages are moved, so a run cut short between the two leaves the
messages where they were and the next run reads them again: the events' replay key (source, the
bounce's own Message-ID, the address) makes that second reading record nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from digest.config import secret
from digest.errors import ConfigError
from digest.feedback.bounce_mail import BounceReport, read_bounce
from digest.feedback.events import BOUNCED, DEFERRED, FeedbackEvent
from digest.feedback.imap import Mailbox, tls_context
from digest.store.events import Recorded, latest_sent_row, record_events
from digest.store.ledger import Ledger

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings

BATCH = 100  # messages recorded and moved together: a crash repeats at most this many readings


@dataclass
class FetchReport:
    """What one `digest bounces fetch` did."""

    address: str                                   # host:port
    folder: str
    done_folder: str
    handled: int = 0                               # bounces recorded and moved
    not_bounces: int = 0                           # left where they were
    hard: int = 0
    soft: int = 0
    deferred: int = 0
    by_address: list[str] = field(default_factory=list)  # tied by address to the latest send (no Message-ID)
    recorded: Recorded = field(default_factory=Recorded)


def mailbox_settings(settings: Settings, ca_file: str | None) -> tuple[str, int, str, Path | None]:
    """(host, port, user, CA file) of the bounce mailbox; a ConfigError saying what to set."""
    fb = settings.feedback
    where = settings.where("feedback")
    if not fb.imap_host:
        raise ConfigError(f"{where}: imap_host is not set: digest does not know where the bounce mailbox is.",
                          "set [feedback] imap_host (and imap_user) to the IMAP server of [send] bounce_address")
    user = fb.imap_user or settings.send.bounce_address
    if not user:
        raise ConfigError(f"{where}: neither imap_user nor [send] bounce_address is set.",
                          "set [send] bounce_address (the envelope sender bounces go to) or [feedback] imap_user")
    ca = ca_file or fb.imap_ca_file
    ca_path = None
    if ca:
        ca_path = Path(ca).expanduser()
        if not ca_path.is_absolute() and not ca_file:  # a setting is relative to digest.toml's folder
            ca_path = settings.root / ca_path
    return fb.imap_host, fb.imap_port, user, ca_path


def fetch_bounces(settings: Settings, *, ca_file: str | None = None, timeout: float = 30.0) -> FetchReport:
    """Read the bounce mailbox once: record each bounce's events, move the bounces to the done folder."""
    host, port, user, ca_path = mailbox_settings(settings, ca_file)
    fb = settings.feedback
    password = secret(fb.imap_password_env, purpose=f"IMAP password for {user} at {host}:{port}")
    context = tls_context(ca_path, settings.where("feedback"))
    report = FetchReport(f"{host}:{port}", fb.imap_folder, fb.imap_done_folder)
    with Mailbox(host, port, context=context, timeout=timeout).login(user, password) as box:
        box.ensure_folder(fb.imap_done_folder)
        box.select(fb.imap_folder)
        uids = box.uids()
        for start in range(0, len(uids), BATCH):
            handled = _batch(settings, box, uids[start:start + BATCH], report)
            box.move(handled, fb.imap_done_folder)
    return report


def _batch(settings: Settings, box: Mailbox, uids: list[bytes], report: FetchReport) -> list[bytes]:
    """Read and record one batch; the UIDs of the bounces in it."""
    handled: list[bytes] = []
    events: list[FeedbackEvent] = []
    for uid in uids:
        raw = box.fetch(uid)
        bounce = read_bounce(raw) if raw is not None else BounceReport((), None)
        if not bounce.is_bounce:
            report.not_bounces += raw is not None
            continue
        handled.append(uid)
        events.extend(bounce.events)
    with Ledger.for_settings(settings) as ledger:
        events = [_tie_by_address(ledger, event, report) for event in events]
        recorded = record_events(ledger, events, soft_limit=settings.feedback.soft_bounce_limit)
    _count(report, events, recorded)
    report.handled += len(handled)
    return handled


def _tie_by_address(ledger: Ledger, event: FeedbackEvent, report: FetchReport) -> FeedbackEvent:
    """A bounce that quotes no Message-ID is taken to be about the latest send that reached the address."""
    if event.message_id:
        return event
    row = latest_sent_row(ledger, event.email)
    if row is None:
        return event
    if event.email not in report.by_address:
        report.by_address.append(event.email)
    return dataclasses.replace(event, recipient_id=row)


def _count(report: FetchReport, events: list[FeedbackEvent], recorded: Recorded) -> None:
    for event in events:
        report.hard += event.event == BOUNCED and event.permanent
        report.soft += event.event == BOUNCED and not event.permanent
        report.deferred += event.event == DEFERRED
    total = report.recorded
    total.new += recorded.new
    total.replayed += recorded.replayed
    total.matched += recorded.matched
    total.suppressed.extend(recorded.suppressed)
