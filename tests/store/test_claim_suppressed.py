"""A claim never takes a suppressed address: checked in the claiming statement, no window."""

from __future__ import annotations

from digest.store.ledger import Ledger
from digest.store.rows import DEFERRED


def _send(ledger: Ledger, n: int):
    rows = [(f"r{i}@example.net", f"r{i}@example.net", "", {}, (), i) for i in range(n)]
    return ledger.create_send("s", content_fp="c", list_fp="l", settings_fp="x", list_path="list.csv",
                              subject="S", recipients=rows)


def states(ledger: Ledger, send_id: int) -> dict[str, str]:
    return {r.email: r.state for r in ledger.recipients(send_id)}


def test_claims_skip_addresses_suppressed_during_the_send(tmp_path):
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        send = _send(ledger, 10)
        ledger.suppress("r2@example.net", "unsubscribed", source="one-click")
        ledger.suppress("R7@Example.NET", "unsubscribed", source="web")  # the one address rule
        first = ledger.claim(send.id, 4)
        assert [r.email for r in first] == ["r0@example.net", "r1@example.net", "r3@example.net", "r4@example.net"]
        # Only what the claim passed over is marked now; r7 waits until a claim reaches it.
        assert states(ledger, send.id)["r2@example.net"] == "skipped"
        assert states(ledger, send.id)["r7@example.net"] == "pending"
        rest = ledger.claim(send.id, 10)
        assert [r.email for r in rest] == ["r5@example.net", "r6@example.net", "r8@example.net", "r9@example.net"]
        assert states(ledger, send.id)["r7@example.net"] == "skipped"
        assert ledger.claim(send.id, 10) == []
        assert ledger.counts(send.id)["skipped"] == 2


def test_claims_by_id_skip_them_too(tmp_path):
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        send = _send(ledger, 4)
        rows = ledger.claim(send.id, 4)
        ledger.record([])
        ledger._db.execute("UPDATE recipients SET state='deferred'")
        ledger.suppress("r1@example.net", "unsubscribed", source="one-click")
        again = ledger.claim(send.id, 4, ids=[r.id for r in rows], from_state=DEFERRED)
        assert [r.email for r in again] == ["r0@example.net", "r2@example.net", "r3@example.net"]
        assert states(ledger, send.id)["r1@example.net"] == "skipped"


def test_unsuppress_from_removes_only_the_given_sources(tmp_path):
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        ledger.suppress("a@example.net", "unsubscribed", source="one-click")
        ledger.suppress("b@example.net", "hard bounce", source="bounce")
        assert ledger.unsuppress_from("A@example.net", ("web", "one-click")) is True
        assert ledger.unsuppress_from("b@example.net", ("web", "one-click")) is False
        assert not ledger.is_suppressed("a@example.net") and ledger.is_suppressed("b@example.net")


def test_connections_opening_a_new_ledger_at_once_apply_each_migration_once(tmp_path):
    import threading

    errors, barrier = [], threading.Barrier(12)

    def open_it():
        barrier.wait()
        try:
            Ledger(tmp_path / "ledger.sqlite3", timeout=30).close()
        except Exception as exc:  # noqa: BLE001 — collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
