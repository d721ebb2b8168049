"""The batch loop against a real ledger file: claims, retries with backoff, stops, rate limiting."""

from __future__ import annotations

import threading

import pytest

from digest.errors import TransientTransportError, TransportAuthError
from digest.store.ledger import Ledger
from digest.delivery.options import RunOptions
from digest.delivery.loop import SendLoop
from digest.delivery.throttle import TokenBucket, backoff_delay
from digest.outgoing import OutgoingMessage
from digest.transports.base import SendResult, Status, Transport
from tests.helpers.clock import FakeClock


class ScriptedTransport(Transport):
    """Answers each recipient from a script: email → list of statuses, one per attempt (then SENT)."""

    name = "scripted"
    needs_mime = False

    def __init__(self, script=None, raise_on=None, max_batch=100):
        super().__init__(settings=None)
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.raise_on = raise_on or {}  # batch number → exception
        self.batches: list[list[str]] = []
        self.delivered: list[str] = []
        self.max_batch = max_batch
        self.lock = threading.Lock()

    def send_batch(self, messages):
        with self.lock:
            self.batches.append([m.to_email for m in messages])
            exc = self.raise_on.get(len(self.batches))
        if exc:
            raise exc
        results = []
        for m in messages:
            steps = self.script.get(m.to_email)
            status = steps.pop(0) if steps else Status.SENT
            if status == Status.SENT:
                with self.lock:
                    self.delivered.append(m.to_email)
                results.append(SendResult(m.recipient_id, Status.SENT, provider_id=f"id-{m.recipient_id}"))
            elif status == Status.FAILED:
                results.append(SendResult(m.recipient_id, Status.FAILED, code="550", reason="no such user",
                                          suppress=True))
            else:
                results.append(SendResult(m.recipient_id, Status.DEFERRED, code="451", reason="try later",
                                          retry_after=None))
        return results


def build(rows):
    return [OutgoingMessage(recipient_id=r.id, to_email=r.email, to_name=r.name, from_addr="N <n@example.org>",
                            envelope_from="n@example.org", reply_to=None, subject="Hi", html="<p>x</p>",
                            text="x", message_id=f"<{r.id}@example.org>") for r in rows]


def setup_send(tmp_path, n):
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    recipients = [(f"u{i}@example.org", f"u{i}@example.org", "", {}, (), i + 1) for i in range(1, n + 1)]
    send = ledger.create_send("issue", content_fp="c", list_fp="l", settings_fp="s", list_path="x",
                              subject="Hi", recipients=recipients)
    return ledger, send


def run(ledger, send, transports, clock=None, **opts):
    clock = clock or FakeClock()
    options = RunOptions(**{"batch_size": 10, "retry_base_delay": 1.0, "retry_max_delay": 60.0, **opts})
    loop = SendLoop(ledger, send.id, transports, build, options, clock=clock, sleep=clock.sleep,
                    rand=lambda: 1.0)
    return loop.run()


def test_every_recipient_sent_once(tmp_path):
    ledger, send = setup_send(tmp_path, 95)
    t = ScriptedTransport()
    stats = run(ledger, send, [t])
    assert sorted(t.delivered) == sorted(f"u{i}@example.org" for i in range(1, 96))
    assert stats.sent == 95 and stats.failed == 0 and stats.stopped is None
    assert ledger.counts(send.id)["sent"] == 95
    assert max(len(b) for b in t.batches) == 10


def test_several_connections_share_the_work_without_duplicates(tmp_path):
    ledger, send = setup_send(tmp_path, 200)
    ts = [ScriptedTransport() for _ in range(4)]
    stats = run(ledger, send, ts)
    delivered = [e for t in ts for e in t.delivered]
    assert len(delivered) == 200 and len(set(delivered)) == 200
    assert stats.sent == 200


def test_deferred_is_retried_with_backoff_then_sent(tmp_path):
    ledger, send = setup_send(tmp_path, 3)
    t = ScriptedTransport({"u2@example.org": [Status.DEFERRED, Status.DEFERRED]})
    clock = FakeClock()
    stats = run(ledger, send, [t], clock=clock, retries=3)
    assert t.delivered.count("u2@example.org") == 1
    assert stats.sent == 3 and stats.deferred == 0 and stats.retried == 2
    # equal jitter with rand=1.0: 1 s, then 2 s
    assert clock.slept == [1.0, 2.0]
    row = [r for r in ledger.recipients(send.id) if r.email == "u2@example.org"][0]
    assert row.attempts == 3 and row.state == "sent"


def test_deferred_beyond_retries_is_left_for_the_next_run(tmp_path):
    ledger, send = setup_send(tmp_path, 2)
    t = ScriptedTransport({"u1@example.org": [Status.DEFERRED] * 3})
    stats = run(ledger, send, [t], retries=2)
    assert stats.deferred == 1 and stats.sent == 1
    assert ledger.counts(send.id)["deferred"] == 1
    # next run: prepare_run puts it back and it goes out
    ledger.prepare_run(send.id)
    stats = run(ledger, send, [t], retries=2)
    assert stats.sent == 1 and ledger.counts(send.id)["sent"] == 2


def test_retry_after_is_honoured(tmp_path):
    ledger, send = setup_send(tmp_path, 1)

    class Slow(ScriptedTransport):
        def send_batch(self, messages):
            if not self.batches:
                self.batches.append(["x"])
                return [SendResult(m.recipient_id, Status.DEFERRED, code="429", retry_after=30.0) for m in messages]
            return super().send_batch(messages)

    clock = FakeClock()
    stats = run(ledger, send, [Slow()], clock=clock)
    assert stats.sent == 1 and clock.slept == [30.0]


def test_failed_is_recorded_and_suppressed_others_continue(tmp_path):
    ledger, send = setup_send(tmp_path, 5)
    t = ScriptedTransport({"u3@example.org": [Status.FAILED]})
    stats = run(ledger, send, [t])
    assert stats.sent == 4 and stats.failed == 1 and stats.suppressed_now == 1
    assert ledger.is_suppressed("u3@example.org")
    row = ledger.recipients(send.id, ["failed"])[0]
    assert (row.email, row.code, row.permanent) == ("u3@example.org", "550", True)


def test_auth_error_stops_at_once_and_hands_the_batch_back(tmp_path):
    ledger, send = setup_send(tmp_path, 30)
    t = ScriptedTransport(raise_on={2: TransportAuthError("127.0.0.1:25: 535 authentication failed")})
    stats = run(ledger, send, [t])
    assert isinstance(stats.error, TransportAuthError)
    assert len(t.batches) == 2  # no retries after the auth error
    counts = ledger.counts(send.id)
    assert counts["sent"] == 10 and counts["pending"] == 20 and counts["sending"] == 0
    assert all(r.attempts == 0 for r in ledger.recipients(send.id, ["pending"]))


def test_consecutive_failures_stop_the_run_resumably(tmp_path):
    ledger, send = setup_send(tmp_path, 100)
    t = ScriptedTransport({f"u{i}@example.org": [Status.FAILED] for i in range(1, 101)})
    stats = run(ledger, send, [t], max_consecutive_failures=25)
    assert stats.stopped and "25 failures in a row" in stats.stopped
    counts = ledger.counts(send.id)
    # at most the batches already handed out (one sending + one queued) fail after the 25th
    assert 25 <= counts["failed"] <= 25 + 2 * 10
    assert counts["pending"] == 100 - counts["failed"] and counts["sending"] == 0


def test_deferrals_being_retried_do_not_pause_the_run(tmp_path):
    ledger, send = setup_send(tmp_path, 100)
    t = ScriptedTransport({f"u{i}@example.org": [Status.DEFERRED] for i in range(1, 101)})  # greylisting
    stats = run(ledger, send, [t], max_consecutive_failures=25)
    assert stats.stopped is None and stats.sent == 100 and stats.retried == 100


def test_deferrals_whose_retries_are_used_up_pause_the_run(tmp_path):
    ledger, send = setup_send(tmp_path, 100)
    t = ScriptedTransport({f"u{i}@example.org": [Status.DEFERRED] * 5 for i in range(1, 101)})
    stats = run(ledger, send, [t], max_consecutive_failures=25, retries=2)
    assert stats.stopped and "25 failures in a row" in stats.stopped
    assert stats.sent == 0 and ledger.counts(send.id)["sending"] == 0


def test_transient_batch_error_defers_and_retries_the_batch(tmp_path):
    ledger, send = setup_send(tmp_path, 10)
    t = ScriptedTransport(raise_on={1: TransientTransportError("127.0.0.1:25: connection lost")})
    stats = run(ledger, send, [t])
    assert stats.sent == 10 and sorted(t.delivered) == sorted(f"u{i}@example.org" for i in range(1, 11))


def test_limit_takes_only_that_many(tmp_path):
    ledger, send = setup_send(tmp_path, 30)
    t = ScriptedTransport()
    stats = run(ledger, send, [t], limit=12)
    assert stats.sent == 12 and ledger.counts(send.id)["pending"] == 18


def test_build_failure_fails_only_that_recipient(tmp_path):
    ledger, send = setup_send(tmp_path, 4)

    def flaky_build(rows):
        return [ValueError("boom") if r.email == "u2@example.org" else m for r, m in zip(rows, build(rows))]

    t = ScriptedTransport()
    loop = SendLoop(ledger, send.id, [t], flaky_build, RunOptions(batch_size=10))
    stats = loop.run()
    assert stats.sent == 3 and stats.failed == 1
    row = ledger.recipients(send.id, ["failed"])[0]
    assert row.permanent is False and "message not built: boom" in row.last_error


def test_token_bucket_holds_the_rate_over_the_run():
    clock = FakeClock()
    bucket = TokenBucket(10.0, burst=10, clock=clock, sleep=clock.sleep)
    start = clock.now
    for _ in range(30):
        bucket.acquire(10)
    # 300 messages at 10/s with a 10-message burst: at least 29 s.
    assert clock.now - start == pytest.approx(29.0)


def test_rate_applies_to_a_whole_send(tmp_path):
    ledger, send = setup_send(tmp_path, 50)
    clock = FakeClock()
    stats = run(ledger, send, [ScriptedTransport()], clock=clock, rate=5.0)
    assert stats.sent == 50
    assert sum(clock.slept) == pytest.approx(9.0)  # 50 messages at 5/s, first 5 as a burst


def test_backoff_grows_and_caps():
    delays = [backoff_delay(n, 1.0, 10.0, rand=lambda: 1.0) for n in range(1, 7)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff_delay(1, 1.0, 10.0, rand=lambda: 0.0) == 0.5
    assert backoff_delay(1, 1.0, 10.0, retry_after=42.0, rand=lambda: 0.0) == 42.0
