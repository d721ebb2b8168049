"""The SQLite ledger: schema, audience fixing, claims committed before sending, suppression list."""

from __future__ import annotations

import sqlite3
import time

import pytest

from digest.errors import LedgerError
from digest.store.schema import MIGRATIONS
from digest.store.ledger import Ledger
from digest.store.rows import Outcome


def rows(n, start=1):
    return [(f"user{i}@example.org", f"user{i}@example.org", f"User {i}", {"first_name": f"U{i}"}, ("a",), i + 1)
            for i in range(start, start + n)]


def make_send(ledger, n=5, slug="issue-1", **kw):
    args = dict(content_fp="c1", list_fp="l1", settings_fp="s1", list_path="subs.csv", subject="Hi")
    args.update(kw)
    return ledger.create_send(slug, recipients=rows(n), **args)


def test_schema_version_and_wal(tmp_path):
    path = tmp_path / "state" / "ledger.sqlite3"
    with Ledger(path):
        pass
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")} >= {
        "sends", "recipients", "suppressions"}


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(LedgerError, match="newer than this digest"):
        Ledger(path)


def test_create_send_fixes_audience_in_one_transaction(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite3")
    send = make_send(ledger, 5, skipped={"suppressed": 2})
    assert send.audience == 5 and send.skipped == {"suppressed": 2} and send.state == "sending"
    assert ledger.counts(send.id)["pending"] == 5
    row = ledger.recipients(send.id)[0]
    assert (row.email, row.name, row.fields, row.tags, row.line) == (
        "user1@example.org", "User 1", {"first_name": "U1"}, ("a",), 2)


def test_failing_audience_stream_keeps_nothing(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite3")

    def stream():
        yield from rows(3)
        raise ValueError("bad row at line 5")

    with pytest.raises(ValueError):
        ledger.create_send("issue-1", content_fp="c", list_fp="l", settings_fp="s", list_path="x",
                           subject="", recipients=stream())
    assert ledger.get_send("issue-1") is None
    assert sqlite3.connect(tmp_path / "l.sqlite3").execute("SELECT count(*) FROM recipients").fetchone()[0] == 0


def test_claim_is_committed_before_it_returns(tmp_path):
    path = tmp_path / "l.sqlite3"
    ledger = Ledger(path)
    send = make_send(ledger, 5)
    batch = ledger.claim(send.id, 3)
    assert [r.id for r in batch] == [1, 2, 3] and all(r.attempts == 1 for r in batch)
    # A second connection (as after a crash) already sees the claim.
    other = sqlite3.connect(path)
    states = dict(other.execute("SELECT id, state FROM recipients"))
    assert states == {1: "sending", 2: "sending", 3: "sending", 4: "pending", 5: "pending"}


def test_record_and_counts(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite3")
    send = make_send(ledger, 4)
    batch = ledger.claim(send.id, 4)
    ledger.record([Outcome(batch[0].id, "sent", provider_id="q1"),
                   Outcome(batch[1].id, "failed", code="550", error="no such user", permanent=True),
                   Outcome(batch[2].id, "deferred", code="451", error="try later"),
                   Outcome(batch[3].id, "pending", error="auth refused")],
                  suppress=[(batch[1].email, "550 no such user")])
    counts = ledger.counts(send.id)
    assert (counts["sent"], counts["failed"], counts["deferred"], counts["pending"]) == (1, 1, 1, 1)
    assert ledger.is_suppressed("USER2@Example.org")
    handed_back = ledger.recipients(send.id, ["pending"])[0]
    assert handed_back.attempts == 0  # not attempted: the claim is undone
    assert ledger.recipients(send.id, ["sent"])[0].provider_id == "q1"


def test_prepare_run_requeues_in_flight_as_in_doubt_and_skips_suppressed(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite3")
    send = make_send(ledger, 5)
    ledger.claim(send.id, 2)  # "crash" with rows 1-2 in flight
    batch = ledger.claim(send.id, 2)
    ledger.record([Outcome(batch[0].id, "deferred", error="451"),
                   Outcome(batch[1].id, "failed", error="build error", permanent=False)])
    ledger.suppress("user5@example.org", "unsubscribed")
    counts = ledger.prepare_run(send.id)
    assert counts == {"suppressed": 1, "in_doubt": 2, "deferred": 1, "failed": 0}
    assert ledger.counts(send.id)["pending"] == 3 and ledger.counts(send.id)["skipped"] == 1
    assert ledger.in_doubt_sent(send.id) == 2
    assert ledger.prepare_run(send.id, retry_failed=True)["failed"] == 1


def test_permanent_failures_are_not_retried(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite3")
    send = make_send(ledger, 1)
    (row,) = ledger.claim(send.id, 1)
    ledger.record([Outcome(row.id, "failed", code="550", error="no such user", permanent=True)],
                  suppress=[(row.email, "550 no such user")])
    # suppressed by its own bounce: it stays 'failed' (the record of what happened), not 'skipped'
    assert ledger.prepare_run(send.id, retry_failed=True) == {"suppressed": 0, "in_doubt": 0, "deferred": 0,
                                                               "failed": 0}
    assert ledger.counts(send.id)["failed"] == 1


def test_amend_send_adds_new_and_skips_departed(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite3")
    send = make_send(ledger, 3)
    (first,) = ledger.claim(send.id, 1)
    ledger.record([Outcome(first.id, "sent")])
    # New list: user1 (sent), user3 stays, user2 left, user9 is new.
    new = [r for r in rows(3) if r[0] != "user2@example.org"] + rows(1, start=9)
    added, dropped = ledger.amend_send(send.id, content_fp="c2", list_fp="l2", settings_fp="s1",
                                       list_path="subs.csv", subject="Hi", recipients=new)
    assert (added, dropped) == (1, 1)
    assert ledger.get_send("issue-1").content_fp == "c2"
    counts = ledger.counts(send.id)
    assert (counts["sent"], counts["pending"], counts["skipped"]) == (1, 2, 1)


def test_suppression_api(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite3")
    assert ledger.suppress("Ann@Example.ORG", "unsubscribed") is True
    assert ledger.suppress("ann@example.org", "again") is False
    assert ledger.is_suppressed("ANN@example.org")
    assert ledger.suppressed_keys() == {"ann@example.org"}
    assert ledger.suppress_many([("b@example.org", "bounce"), ("ann@example.org", "x")], "import") == 1
    listed = list(ledger.iter_suppressions())
    assert [(e, r, s) for e, r, s, _ in listed] == [("Ann@Example.ORG", "unsubscribed", "manual"),
                                                   ("b@example.org", "bounce", "import")]
    assert ledger.unsuppress("ann@EXAMPLE.org") is True
    assert ledger.unsuppress("ann@example.org") is False


def test_claim_fails_loudly_when_the_ledger_cannot_be_written(tmp_path):
    path = tmp_path / "l.sqlite3"
    ledger = Ledger(path, timeout=0.05)
    send = make_send(ledger, 3)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(LedgerError, match=r"l\.sqlite3: cannot claim the next batch: database is locked"):
            ledger.claim(send.id, 3)
    finally:
        blocker.execute("ROLLBACK")
    assert ledger.counts(send.id)["pending"] == 3


def test_unopenable_path_names_the_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(LedgerError, match=r"afile/ledger\.sqlite3"):
        Ledger(tmp_path / "afile" / "ledger.sqlite3")


def test_read_only_open_of_missing_file(tmp_path):
    with pytest.raises(LedgerError, match="cannot open"):
        Ledger(tmp_path / "missing.sqlite3", readonly=True)


def test_finishing_again_without_sending_keeps_the_finish_time(tmp_path):
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        send = make_send(ledger, 3)
        ledger.prepare_run(send.id)
        ledger.record([Outcome(r.id, "sent") for r in ledger.claim(send.id, 3)])
        ledger.set_send_state(send.id, "finished")
        finished = ledger.get_send("issue-1").finished_at
        time.sleep(0.01)
        ledger.prepare_run(send.id)  # a resume with nothing left to send
        ledger.set_send_state(send.id, "finished")
        assert ledger.get_send("issue-1").finished_at == finished
        # A resume that did send (a reader added with --resume-changed) finishes anew.
        ledger.amend_send(send.id, content_fp="c1", list_fp="l2", settings_fp="s1", list_path="subs.csv",
                          subject="Hi", recipients=rows(4))
        ledger.prepare_run(send.id)
        ledger.record([Outcome(r.id, "sent") for r in ledger.claim(send.id, 3)])
        ledger.set_send_state(send.id, "finished")
        assert ledger.get_send("issue-1").finished_at > finished
