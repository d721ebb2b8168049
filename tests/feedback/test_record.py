"""Recording feedback: matching to the send's row, suppressing, the soft-bounce streak, replays."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

from digest.feedback.events import BOUNCED, COMPLAINED, DELIVERED, FeedbackEvent, event_time
from digest.feedback.normalise import mailgun_events, sendgrid_message_id
from digest.feedback.record import feedback_of, previous_feedback, record
from digest.store.events import send_feedback, slug_of_message_id
from digest.store.ledger import Ledger, ledger_path
from digest.store.schema import MIGRATIONS
from tests.helpers.feedback import fixture, sent_send

WHEN = datetime(2026, 12, 1, tzinfo=timezone.utc)


def soft(email: str, event_id: str, provider_id: str) -> FeedbackEvent:
    return FeedbackEvent("postmark", BOUNCED, email, WHEN, event_id, permanent=False, provider_id=provider_id,
                         reason="mailbox full")


def suppressed(settings) -> dict[str, str]:
    with Ledger.for_settings(settings, readonly=True) as ledger:
        return {e: r for e, r, _s, _c in ledger.iter_suppressions()}


def test_soft_bounces_suppress_after_the_limit_of_consecutive_sends(settings):
    settings.feedback.soft_bounce_limit = 3
    for n in range(3):
        sent_send(settings, f"issue-{n}", [("full@example.org", f"pm-{n}"), ("ok@example.org", f"ok-{n}")],
                  started=f"2026-0{n + 1}-01T00:00:00.000Z")
    record(settings, [soft("full@example.org", "e0", "pm-0"), soft("full@example.org", "e1", "pm-1")])
    assert "full@example.org" not in suppressed(settings)
    result = record(settings, [soft("full@example.org", "e2", "pm-2")])
    assert result.suppressed and "3 consecutive sends" in suppressed(settings)["full@example.org"]


def test_a_send_without_a_bounce_breaks_the_streak(settings):
    settings.feedback.soft_bounce_limit = 2
    for n in range(3):
        sent_send(settings, f"issue-{n}", [("full@example.org", f"pm-{n}")], started=f"2026-0{n + 1}-01T00:00:00Z")
    record(settings, [soft("full@example.org", "e0", "pm-0"), soft("full@example.org", "e2", "pm-2")])
    assert suppressed(settings) == {}


def test_replays_change_nothing_and_unmatched_events_still_suppress(settings):
    complaint = FeedbackEvent("sendgrid", COMPLAINED, "stranger@example.org", WHEN, "ev-1")
    first = record(settings, [complaint])
    again = record(settings, [complaint])
    assert (first.new, first.matched, again.new, again.replayed) == (1, 0, 0, 1)
    assert suppressed(settings) == {"stranger@example.org": "complaint"}


def test_matching_by_metadata_row_id_and_by_message_id(settings):
    ids = sent_send(settings, "2023-12", [("a@example.org", None), ("b@example.org", None)])
    mid = "<2023-12.0123456789abcdef01234567@example.org>"
    result = record(settings, [FeedbackEvent("x", DELIVERED, "a@example.org", WHEN, "1", recipient_id=ids[0]),
                               FeedbackEvent("x", DELIVERED, "b@example.org", WHEN, "2", message_id=mid),
                               # a row id that is not this address's row is not trusted
                               FeedbackEvent("x", DELIVERED, "c@example.org", WHEN, "3", recipient_id=ids[0])])
    assert result.matched == 2
    assert feedback_of(settings, "2023-12").delivered == 2
    assert slug_of_message_id(mid) == "2023-12" and slug_of_message_id("<abc@example.org>") is None


def test_previous_feedback_is_the_latest_other_send(settings):
    sent_send(settings, "older", [("a@example.org", "p1")], started="2026-01-01T00:00:00Z")
    sent_send(settings, "newer", [("a@example.org", "p2")], started="2026-02-01T00:00:00Z")
    record(settings, [FeedbackEvent("x", COMPLAINED, "a@example.org", WHEN, "1", provider_id="p2")])
    slug, fb = previous_feedback(settings, "next-issue")
    assert slug == "newer" and fb.complained == 1 and fb.rate(fb.complained) == 100.0
    assert previous_feedback(settings, "newer") is None  # older has no events


def test_an_old_ledger_opened_read_only_has_no_feedback(settings):
    path = ledger_path(settings)
    path.parent.mkdir(parents=True)
    db = sqlite3.connect(path)
    db.create_function("digest_address_key", 1, lambda e: e)
    for script in MIGRATIONS[:3]:
        db.executescript(script)
    db.execute("PRAGMA user_version=3")
    db.close()
    with Ledger(path, readonly=True) as ledger:
        assert send_feedback(ledger, 1) is None
    assert feedback_of(settings, "2023-12") is None


def test_normalisers_read_the_documented_shapes():
    soft_mailgun = fixture("mailgun_failed")
    soft_mailgun["event-data"]["reason"] = "old"
    assert mailgun_events(soft_mailgun)[0].permanent is False
    assert mailgun_events(fixture("mailgun_failed"))[0].permanent is True
    assert sendgrid_message_id("14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0") == "14c5d75ce93.dfd.64b469"
    assert event_time("2019-11-05T16:33:54.9070259Z").year == 2019
    assert event_time(1513299569).year == 2017
    assert event_time("Fri, 21 Oct 2011 11:02:55 UTC").year == 2011
