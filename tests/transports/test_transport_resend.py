"""Resend: idempotency key per batch, permissive validation, replay after a timeout, 409s."""

from __future__ import annotations

import dataclasses
import json

import pytest

from digest.errors import ConfigError, PermanentTransportError
from digest.transports.base import Status
from digest.transports.http import APIResponse
from digest.transports.resend import ResendSettings, ResendTransport, build_request, idempotency_key

from tests.helpers.fake_providers import FakeResend, outgoing, settings_for


@pytest.fixture
def fake(monkeypatch):
    with FakeResend() as server:
        monkeypatch.setenv("RESEND_API_KEY", server.token)
        yield server


def transport(tmp_path, fake, **extra):
    return ResendTransport(settings_for(tmp_path, "resend", fake, **extra), sleep=lambda s: None)


def test_idempotency_key_stable_for_the_same_batch_and_different_otherwise():
    a = outgoing(3)
    assert idempotency_key(a) == idempotency_key(outgoing(3))
    assert idempotency_key(a) != idempotency_key(outgoing(3, start=2))
    assert idempotency_key(a) != idempotency_key(a[:2])
    assert idempotency_key(a) != idempotency_key(list(reversed(a)))
    assert len(idempotency_key(outgoing(100))) <= 256


def test_build_request_shape():
    msgs = outgoing(2)
    req = build_request(msgs, ResendSettings(base_url="https://rs.test"), "re_tok")
    assert (req.method, req.url) == ("POST", "https://rs.test/emails/batch")
    assert req.headers["Authorization"] == "Bearer re_tok"
    assert req.headers["Idempotency-Key"] == idempotency_key(msgs)
    assert req.headers["x-batch-validation"] == "permissive"
    first = req.json[0]
    assert first["to"] == ["Reader 1 <reader1@example.org>"]
    assert first["reply_to"] == "editor@example.org"
    assert first["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert first["headers"]["Message-ID"] == "<issue-2023.1@example.org>"
    with pytest.raises(ValueError, match="1–100 messages per call, got 101"):
        build_request(outgoing(101), ResendSettings(), "t")


def test_name_resend_cannot_take_is_dropped_not_sent_quoted():
    (msg,) = outgoing(1)
    msg = dataclasses.replace(msg, to_name='Doe, "JJ" Jane')
    assert build_request([msg], ResendSettings(), "t").json[0]["to"] == ["reader1@example.org"]


def test_retry_after_timeout_is_answered_from_the_idempotency_store(tmp_path, fake):
    msgs = outgoing(3)
    fake.hang(1.0, process=True)  # Resend accepts the batch but the answer comes too late
    with transport(tmp_path, fake, timeout=0.3) as t:
        first = t.send_batch(msgs)
        assert all(r.status is Status.DEFERRED and r.code == "timeout" for r in first)
        again = t.send_batch(msgs)  # the send loop retries the same batch
    assert all(r.status is Status.SENT and r.provider_id for r in again)
    assert fake.replayed == 1
    assert [fake.accepted[m.to_email] for m in msgs] == [1, 1, 1]
    assert [fake.posted[m.to_email] for m in msgs] == [2, 2, 2]
    keys = {c.headers["idempotency-key"] for c in fake.calls}
    assert keys == {idempotency_key(msgs)}


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
        assert all(r.status is Status.DEFERRED and r.retry_after == 1.0 for r in results)
        with pytest.raises(PermanentTransportError, match="issue changed after part of it was sent"):
            t.send_batch(msgs)


def test_changed_content_under_the_same_ids_is_refused_not_sent_twice(tmp_path, fake):
    msgs = outgoing(1)
    with transport(tmp_path, fake) as t:
        t.send_batch(msgs)
        changed = [dataclasses.replace(msgs[0], subject="Corrected subject")]
        with pytest.raises(PermanentTransportError, match="HTTP 409.*invalid_idempotent_request"):
            t.send_batch(changed)
    assert fake.accepted[msgs[0].to_email] == 1


def test_answer_with_wrong_number_of_ids_stops(tmp_path, fake):
    t = transport(tmp_path, fake)
    req = build_request(outgoing(2), t.config, "t")
    with pytest.raises(PermanentTransportError, match="1 ids for 2 accepted messages"):
        t.read_results(req, APIResponse(200, {}, json.dumps({"data": [{"id": "x"}]})))
