"""The previous send's complaints and hard bounces stop the next send (a warning with its figures),
until accepted; `digest status` shows what came back."""

from __future__ import annotations

from datetime import datetime, timezone

from digest.feedback.events import BOUNCED, COMPLAINED, DELIVERED, FeedbackEvent
from digest.feedback.record import record
from tests.checks.helpers import run
from tests.helpers.feedback import sent_send
from tests.helpers.project import EXAMPLE_ISSUE

WHEN = datetime(2026, 11, 1, tzinfo=timezone.utc)


def previous_send_with(settings, complaints: int, bounces: int, sent: int = 200) -> None:
    people = [(f"r{i}@example.net", f"pm-{i}") for i in range(sent)]
    sent_send(settings, "2023-11-autumn", people, started="2026-11-01T00:00:00Z")
    events = [FeedbackEvent("postmark", COMPLAINED, f"r{i}@example.net", WHEN, f"c{i}", provider_id=f"pm-{i}")
              for i in range(complaints)]
    events += [FeedbackEvent("postmark", BOUNCED, f"r{100 + i}@example.net", WHEN, f"b{i}", permanent=True,
                             provider_id=f"pm-{100 + i}") for i in range(bounces)]
    events += [FeedbackEvent("postmark", DELIVERED, "r199@example.net", WHEN, "d1", provider_id="pm-199")]
    record(settings, events)


def test_a_complaint_rate_above_the_limit_stops_the_send_with_the_figures(project, settings):
    previous_send_with(settings, complaints=1, bounces=0)  # 1 of 200 = 0.50 % > 0.3 %
    code, out, err = run("check", EXAMPLE_ISSUE)
    assert "feedback-complaint-rate" in out
    assert "the previous send (2023-11-autumn) had 1 spam complaints from 200 sent (0.50 %), above 0.3 %" in out
    code, out, err = run("send", EXAMPLE_ISSUE, "--yes")
    assert code == 1 and "feedback-complaint-rate" in err
    code, out, err = run("send", EXAMPLE_ISSUE, "--yes", "--accept-warnings")
    assert code == 0 and "accepted warning feedback-complaint-rate" in err, err


def test_hard_bounces_over_the_setting_and_nothing_under_it(project, settings):
    previous_send_with(settings, complaints=0, bounces=5)  # 2.5 % > 2 %
    code, out, _ = run("check", EXAMPLE_ISSUE)
    assert "feedback-bounce-rate" in out and "5 hard bounces from 200 sent (2.50 %)" in out
    settings_file = project / "digest.toml"
    settings_file.write_text(settings_file.read_text() + "\n[feedback]\nmax_hard_bounce_rate = 3.0\n")
    code, out, _ = run("check", EXAMPLE_ISSUE)
    assert "feedback-" not in out


def test_status_shows_what_came_back(project, settings):
    previous_send_with(settings, complaints=1, bounces=2)
    code, out, err = run("status", "2023-11-autumn")
    assert code == 0, err
    assert "came back" in out
    assert "hard bounces  2  (1.00 % of sent)" in out and "complaints    1  (0.50 % of sent)" in out
    assert "delivered     1" in out
