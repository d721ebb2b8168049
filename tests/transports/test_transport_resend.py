"""Resend: an idempotency key per attempt, permissive validation, replay after a timeout, 409s, quotas."""

from __future__ import annotations

import dataclasses
import json

import pytest

import time

from digest.errors import ConfigError, PermanentTransportError, TransportAuthError
from digest.transports.base import AccountRefusedError, Status
from digest.transports.http import APIResponse
from digest.transports.resend import (
    PENDING_KEYS,
    ResendSettings,
    ResendTransport,
    build_request,
    content_digest,
    suppressible,
)

from tests.helpers.fake_providers import FakeResend, outgoing, settings_for


@pytest.fixture
def fake(monkeypatch):
    with FakeResend() as server:
        monkeypatch.setenv("RESEND_API_KEY", server.token)
        yield server


def transport(tmp_path, fake, **extra):
    return ResendTransport(settings_for(tmp_path, "resend", fake, **extra), sleep=lambda s: None)


def keys(fake):
    return [c.headers["idempotency-key"] for c in fake.calls]


def test_content_digest_covers_every_field_of_every_message():
    items = build_request(outgoing(3), ResendSettings(), "t").json
    assert content_digest(items) == content_digest(build_request(outgoing(3), ResendSettings(), "t").json)
    edited = [dict(items[0], subject="Corrected subject")] + items[1:]
    assert content_digest(items) != content_digest(edited)
    assert content_digest(items) != content_digest(items[:2])
    assert content_digest(items) != content_digest(list(reversed(items)))
    assert len(build_request(outgoing(100), ResendSettings(), "t").headers["Idempotency-Key"]) <= 256


def test_build_request_shape():
    msgs = outgoing(2)
    req = build_request(msgs, ResendSettings(base_url="https://rs.test"), "re_tok")
    assert (req.method, req.url) == ("POST", "https://rs.test/emails/batch")
    assert req.headers["Authorization"] == "Bearer re_tok"
    assert req.headers["Idempotency-Key"] == f"digest-{content_digest(req.json)}"
    assert build_request(msgs, ResendSettings(), "t", key="k-1").headers["Idempotency-Key"] == "k-1"
    assert req.headers["x-batch-validation"] == "permissive"
    first = req.json[0]
    assert first["to"] == ["Reader 1 <reader1@example.org>"]
    assert first["reply_to"] == "editor@example.org"
    assert first["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert first["headers"]["Message-ID"] == "<issue-2023.1@example.org>"
    with pytest.raises(ValueError, match="1–100 messages per call, got 101"):
        build_request(outgoing(101), ResendSettings(), "t")


@pytest.mark.parametrize("name, written", [
    ("Doe, Jane", '"Doe, Jane" <reader1@example.org>'),
    ('Doe, "JJ" Jane', '"Doe, \\"JJ\\" Jane" <reader1@example.org>'),
    ("Smith; Ann <boss>", '"Smith; Ann <boss>" <reader1@example.org>'),
])
def test_names_with_punctuation_are_quoted_not_dropped(tmp_path, fake, name, written):
    (msg,) = outgoing(1)
    with transport(tmp_path, fake) as t:
        (result,) = t.send_batch([dataclasses.replace(msg, to_name=name)])
    assert result.status is Status.SENT
    assert b'"to": [' + json.dumps(written).encode() + b"]" in fake.calls[0].raw  # the exact bytes
    assert fake.delivered[0].to == [(name, "reader1@example.org")]  # what the reader's mail app shows


def test_retry_after_timeout_reuses_its_key_waits_while_in_progress_and_is_not_sent_twice(tmp_path, fake):
    msgs = outgoing(3)
    fake.hang(1.0, process=True)  # Resend accepts the batch but the answer comes too late
    with transport(tmp_path, fake, timeout=0.3) as t:
        first = t.send_batch(msgs)
        assert all(r.status is Status.DEFERRED and r.code == "timeout" for r in first)
        busy = t.send_batch(msgs)  # the send loop retries at once: Resend is still on the first one
        assert all(r.status is Status.DEFERRED and r.code == "in_progress" and r.retry_after for r in busy)
        assert all(r.status is not Status.FAILED for r in busy)
        time.sleep(1.0)
        again = t.send_batch(msgs)
    assert all(r.status is Status.SENT and r.provider_id for r in again)
    assert fake.replayed == 1
    assert [fake.accepted[m.to_email] for m in msgs] == [1, 1, 1]
    assert len(set(keys(fake))) == 1, "every retry of the same call carries the same key"


def test_the_same_test_send_twice_is_delivered_twice_not_replayed(tmp_path, fake):
    msgs = outgoing(2)
    for _ in range(2):  # `digest send --test` twice on an unchanged issue: two transports, two runs
        with transport(tmp_path, fake) as t:
            assert all(r.status is Status.SENT for r in t.send_batch(msgs))
    assert fake.replayed == 0
    assert [fake.accepted[m.to_email] for m in msgs] == [2, 2]
    assert len(set(keys(fake))) == 2


@pytest.mark.parametrize("change", [{"subject": "Corrected subject"},           # the issue was edited
                                    {"subject": "[TEST] Learning & Innovation"}])  # a retry after a test send
def test_other_content_with_the_same_message_ids_is_a_new_attempt(tmp_path, fake, change):
    (msg,) = outgoing(1)
    with transport(tmp_path, fake) as t:
        (first,) = t.send_batch([msg])
        (second,) = t.send_batch([dataclasses.replace(msg, **change)])
    assert first.status is second.status is Status.SENT
    assert fake.accepted[msg.to_email] == 2 and len(set(keys(fake))) == 2
    assert [d.subject for d in fake.delivered] == [msg.subject, change["subject"]]


def test_only_calls_with_an_unknown_outcome_keep_their_key(tmp_path, fake):
    msgs = outgoing(1)
    fake.then(500)
    with transport(tmp_path, fake) as t:
        (deferred,) = t.send_batch(msgs)
        (sent,) = t.send_batch(msgs)
        (again,) = t.send_batch(msgs)
    assert deferred.status is Status.DEFERRED and sent.status is again.status is Status.SENT
    first, second, third = keys(fake)
    assert first == second != third
    assert PENDING_KEYS.key_for("no such content") != PENDING_KEYS.key_for("no such content")


def test_permissive_mode_maps_errors_by_index(tmp_path, fake):
    msgs = outgoing(4)
    fake.reject(msgs[0].to_email, "invalid")
    fake.reject(msgs[2].to_email, "invalid")
    with transport(tmp_path, fake) as t:
        results = t.send_batch(msgs)
    assert [r.status for r in results] == [Status.FAILED, Status.SENT, Status.FAILED, Status.SENT]
    assert results[0].suppress and "`to`" in results[0].reason
    ids = [r.provider_id for r in results if r.status is Status.SENT]
    assert len(set(ids)) == 2 and None not in ids


def test_strict_mode_fails_the_whole_call(tmp_path, fake):
    msgs = outgoing(2)
    fake.reject(msgs[1].to_email, "invalid")
    with transport(tmp_path, fake, batch_validation="strict") as t, pytest.raises(PermanentTransportError) as info:
        t.send_batch(msgs)
    assert "HTTP 422" in str(info.value) and "validation_error" in str(info.value)
    assert fake.accepted[msgs[0].to_email] == 0


def test_bad_batch_validation_setting(tmp_path):
    with pytest.raises(ConfigError, match=r"\[resend\] batch_validation = 'lenient': expected 'permissive' or 'strict'"):
        ResendTransport(settings_for(tmp_path, "resend", None, batch_validation="lenient"))


def test_409s(tmp_path, fake):
    msgs = outgoing(2)
    fake.then(409, {"statusCode": 409, "name": "concurrent_idempotent_requests",
                    "message": "Same idempotency key used while original request is still in progress."})
    fake.then(409, {"statusCode": 409, "name": "invalid_idempotent_request",
                    "message": "Same idempotency key used with a different request payload."})
    with transport(tmp_path, fake) as t:
        results = t.send_batch(msgs)
        assert all(r.status is Status.DEFERRED and r.code == "in_progress" and r.retry_after == 1.0
                   for r in results)
        with pytest.raises(PermanentTransportError, match="HTTP 409.*invalid_idempotent_request") as info:
            t.send_batch(msgs)
    assert "issue changed" not in str(info.value) and "digest-" in info.value.hint


# -- quotas ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("quota, period", [({"daily_quota": 3}, "daily"), ({"monthly_quota": 3}, "monthly")])
def test_a_used_up_quota_stops_the_run_with_everyone_still_pending(tmp_path, monkeypatch, quota, period):
    # The error names are Resend's (API reference, Errors); NOT CONFIRMED: their messages and any
    # header saying when the quota resets (the stand-in sends none).
    with FakeResend(**quota) as fake:
        monkeypatch.setenv("RESEND_API_KEY", fake.token)
        with transport(tmp_path, fake) as t:
            assert all(r.status is Status.SENT for r in t.send_batch(outgoing(2)))
            with pytest.raises(AccountRefusedError, match=f"{period} email quota is used up") as info:
                t.send_batch(outgoing(2, start=3))
    assert isinstance(info.value, TransportAuthError)  # the send loop stops and leaves the batch pending
    assert "24 hours" in info.value.hint if period == "daily" else "billing month" in info.value.hint
    assert len(fake.calls) == 2, "a quota is not retried inside the transport"


def test_quota_error_names_the_wait_resend_asks_for(tmp_path, fake):
    fake.then(429, {"statusCode": 429, "name": "daily_quota_exceeded", "message": "quota"},
              headers={"Retry-After": "7200"})
    with transport(tmp_path, fake) as t, pytest.raises(AccountRefusedError) as info:
        t.send_batch(outgoing(1))
    assert "wait 2.0 h" in info.value.hint


# -- which refusals suppress an address --------------------------------------------------------------

@pytest.mark.parametrize("error, suppress", [
    ({"index": 0, "message": "Invalid `to` field. The email address needs to follow the "
                             "`email@example.com` or `Name <email@example.com>` format."}, True),
    ({"index": 0, "message": "The 'to' field is invalid."}, True),
    ({"index": 0, "message": "Invalid to address"}, True),
    ({"index": 0, "name": "invalid_to_address", "message": "?"}, True),
    ({"index": 0, "message": "The `to` field is missing."}, False),
    ({"index": 0, "message": "The `to` field must be a `string`."}, False),
    ({"index": 0, "message": "Invalid `from` field."}, False),
    ({"index": 0, "message": "Invalid `reply_to` field."}, False),
])
def test_only_an_invalid_to_address_is_suppressed(error, suppress):
    assert suppressible(error) is suppress


def test_answer_with_wrong_number_of_ids_stops(tmp_path, fake):
    t = transport(tmp_path, fake)
    req = build_request(outgoing(2), t.config, "t")
    with pytest.raises(PermanentTransportError, match="1 ids for 2 accepted messages"):
        t.read_results(req, APIResponse(200, {}, json.dumps({"data": [{"id": "x"}]})))
