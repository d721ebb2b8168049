"""Recording feedback for a project: events into its ledger, and what a send's feedback adds up to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from digest.store.events import Recorded, SendFeedback, previous_send, record_events, send_feedback
from digest.store.ledger import Ledger, ledger_path

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings
    from digest.feedback.events import FeedbackEvent


def record(settings: "Settings", events: Iterable["FeedbackEvent"], *, nonce: str | None = None) -> Recorded:
    """Record events in the project's ledger: matched to their send, suppressing what they call for."""
    with Ledger.for_settings(settings) as ledger:
        return record_events(ledger, events, soft_limit=settings.feedback.soft_bounce_limit, nonce=nonce)


def feedback_of(settings: "Settings", slug: str) -> SendFeedback | None:
    """What came back for one issue's send (None: no ledger, no send, or no events yet)."""
    if not ledger_path(settings).exists():
        return None
    with Ledger.for_settings(settings, readonly=True) as ledger:
        send = ledger.get_send(slug)
        return send_feedback(ledger, send.id) if send else None


def previous_feedback(settings: "Settings", slug: str) -> tuple[str, SendFeedback] | None:
    """(slug, feedback) of the latest send of another issue, when events about it were recorded."""
    if not ledger_path(settings).exists():
        return None
    with Ledger.for_settings(settings, readonly=True) as ledger:
        previous = previous_send(ledger, slug)
        feedback = send_feedback(ledger, previous[1]) if previous else None
        return (previous[0], feedback) if previous and feedback else None
