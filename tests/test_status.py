"""The issue-status model: what a send row and its counts mean at a given moment."""

from __future__ import annotations

from pathlib import Path

from digest.status import DRAFT, EXPIRED, INTERRUPTED, STATE_FAILED, STATE_SENDING
from tests.helpers.clock import at


def test_classify_failures_left_for_retry_and_a_partly_sent_expired_issue():
    from digest.store.rows import SendRow
    from digest.status import IssueStatus, classify

    row = SendRow(id=1, slug="x", content_fp="", list_fp="", settings_fp="", list_path="", subject="", audience=30,
                  skipped={}, state="stopped", created_at="", started_at="", finished_at=None)
    now = at("2024-01-11T12:00Z")
    e = classify(IssueStatus(slug="x", path=Path("x.yaml"), state=DRAFT, send_at=at("2024-01-11T09:00Z"), send=row,
                             sent=28, total=30, open=0, failed=2, failed_transient=2), now)
    assert (e.state, e.runnable) == (STATE_FAILED, False)  # --due leaves them to `digest retry`
    assert e.reason == "28/30 sent; 2 failed and wait for `digest retry x`"

    e = classify(IssueStatus(slug="x", path=Path("x.yaml"), state=DRAFT, send_at=at("2024-01-11T09:00Z"),
                             not_after=at("2024-01-11T11:00Z"), send=row, sent=20, total=30, open=8, failed=2,
                             failed_transient=2), now)
    assert (e.state, e.runnable, e.reason) == (EXPIRED, False, "20/30 sent, 10 not sent")

    e = classify(IssueStatus(slug="x", path=Path("x.yaml"), state=DRAFT, send_at=at("2024-01-11T09:00Z"),
                             send=row, sent=20, total=30, open=10), now)
    assert (e.state, e.runnable, e.reason) == (INTERRUPTED, True, "20/30 sent")  # nobody is sending it now
    e = classify(IssueStatus(slug="x", path=Path("x.yaml"), state=DRAFT, send_at=at("2024-01-11T09:00Z"),
                             send=row, sent=20, total=30, open=10, running="4242"), now)
    assert (e.state, e.runnable, e.reason) == (STATE_SENDING, True, "20/30 sent")
