"""Postmark: the pure request builder, per-item outcomes inside a 200, whole-call refusals."""

from __future__ import annotations

import json

import pytest

from digest.errors import PermanentTransportError, TransportAuthError
from digest.transports.base import Status
from digest.transports.http import APIResponse
from digest.transports.postmark import PostmarkSettings, PostmarkTransport, build_request

from tests.helpers.fake_providers import FakePostmark, outgoing, settings_for


@pytest.fixture
def fake(monkeypatch):
    with FakePostmark() as server:
        monkeypatch.setenv("POSTMARK_TOKEN", server.token)
        yield server


def transport(tmp_path, fake, **extra):
    return PostmarkTransport(settings_for(tmp_path, "postmark", fake, **extra), sleep=lambda s: None)


def test_build_request_is_one_complete_item_per_message():
    cfg = PostmarkSettings(base_url="https://pm.test", message_stream="newsletter", tag="2023-12")
    msgs = outgoing(2)
    req = build_request(msgs, cfg, "tok")
    assert (req.method, req.url) == ("POST", "https://pm.test/email/batch")
    assert req.headers["X-Postmark-Server-Token"] == "tok"
    assert req.messages == tuple(msgs)
    first = req.json[0]
    assert first["To"] == "Reader 1 <reader1@example.org>"
    assert first["From"] == "Innovation Hub News <news@example.org>"
    assert first["ReplyTo"] == "editor@example.org"
    assert first["MessageStream"] == "newsletter" and first["Tag"] == "2023-12"
    assert first["HtmlBody"] == msgs[0].html and first["TextBody"] == msgs[0].text
    assert {"Name": "List-Unsubscribe", "Value": "<https://example.org/u?t=1>"} in first["Headers"]
    assert {"Name": "Message-ID", "Value": "<issue-2023.1@example.org>"} in first["Headers"]
    assert first["Metadata"] == {"digest_recipient_id": "1"}
    assert req.json[1]["To"] == "Reader 2 <reader2@example.org>"  # each item its own body
    assert "t=2" in req.json[1]["HtmlBody"] and "t=2" not in first["HtmlBody"]


def test_build_request_refuses_more_than_500():
    with pytest.raises(ValueError, match="1–500 messages per call, got 501"):
        build_request(outgoing(501), PostmarkSettings(), "tok")


def test_default_stream_is_broadcast(tmp_path, fake):
    with transport(tmp_path, fake) as t:
        t.send_batch(outgoing(1))
    assert fake.calls[0].payload[0]["MessageStream"] == "broadcast"
    assert "stream broadcast" in t.describe()


def test_partial_failure_in_a_200_and_only_transient_items_resent(tmp_path, fake):
    msgs = outgoing(5)
    fake.reject(msgs[1].to_email, "inactive")
    fake.reject(msgs[2].to_email, "invalid")
    fake.reject(msgs[3].to_email, "transient")
    with transport(tmp_path, fake) as t:
        results = t.send_batch(msgs)
        assert [r.status for r in results] == [Status.SENT, Status.FAILED, Status.FAILED,
                                                Status.DEFERRED, Status.SENT]
        assert [r.suppress for r in results] == [False, True, True, False, False]
        assert [r.code for r in results] == ["0", "406", "300", "100", "0"]
        assert "inactive" in results[1].reason
        # The send loop re-sends exactly the deferred recipients.
        retry = [m for m, r in zip(msgs, results) if r.status is Status.DEFERRED]
        (again,) = t.send_batch(retry)
    assert again.status is Status.SENT and again.provider_id
    assert [fake.posted[m.to_email] for m in msgs] == [1, 1, 1, 2, 1]
    assert [fake.accepted[m.to_email] for m in msgs] == [1, 0, 0, 1, 1]


def test_unknown_message_stream_fails_items_without_suppressing(tmp_path, fake):
    with transport(tmp_path, fake, message_stream="no-such-stream") as t:
        results = t.send_batch(outgoing(2))
    assert all(r.status is Status.FAILED and not r.suppress and r.code == "1235" for r in results)


def test_whole_call_422_is_permanent_with_body(tmp_path, fake):
    fake.then(422, {"ErrorCode": 402, "Message": "Received invalid JSON input."})
    with transport(tmp_path, fake) as t, pytest.raises(PermanentTransportError) as info:
        t.send_batch(outgoing(2))
    assert "HTTP 422" in str(info.value) and "Received invalid JSON input" in str(info.value)


def test_oversized_batch_is_refused_by_the_fake_as_by_postmark(tmp_path, fake):
    # What Postmark answers when a client ignores the limit — the transport never does this.
    import requests
    body = [{"From": "a@example.org", "To": f"r{i}@example.org", "Subject": "s", "TextBody": "t"}
            for i in range(501)]
    resp = requests.post(f"{fake.url}/email/batch", json=body, headers={"X-Postmark-Server-Token": fake.token})
    assert resp.status_code == 422 and resp.json()["ErrorCode"] == 410


def _answer(items):
    return APIResponse(200, {}, json.dumps(items))


def test_account_level_codes_stop_the_run_when_nothing_was_accepted(tmp_path, fake):
    t = transport(tmp_path, fake)
    msgs = outgoing(2)
    req = build_request(msgs, t.config, "tok")
    refused = [{"ErrorCode": 400, "Message": "Sender signature not found"}] * 2
    with pytest.raises(PermanentTransportError, match="ErrorCode 400.*Sender signature not found"):
        t.read_results(req, _answer(refused))
    with pytest.raises(TransportAuthError, match="POSTMARK_TOKEN"):
        t.read_results(req, _answer([{"ErrorCode": 10, "Message": "Bad or missing API token"}] * 2))
    mixed = [{"ErrorCode": 0, "Message": "OK", "MessageID": "m1"}, refused[0]]
    assert [r.status for r in t.read_results(req, _answer(mixed))] == [Status.SENT, Status.FAILED]


def test_ok_but_inactive_message_means_suppressed(tmp_path, fake):
    t = transport(tmp_path, fake)
    req = build_request(outgoing(1), t.config, "tok")
    item = {"ErrorCode": 0, "MessageID": "m1", "Message": "Message OK, but will not deliver to these "
            "inactive addresses: reader1@example.org. Inactive recipients are ones that have generated a hard bounce."}
    (result,) = t.read_results(req, _answer([item]))
    assert result.status is Status.FAILED and result.suppress


def test_answer_not_matching_the_batch_stops_rather_than_guesses(tmp_path, fake):
    t = transport(tmp_path, fake)
    req = build_request(outgoing(2), t.config, "tok")
    with pytest.raises(PermanentTransportError, match="one item per message \\(2\\)"):
        t.read_results(req, _answer([{"ErrorCode": 0, "Message": "OK", "MessageID": "m1"}]))
    with pytest.raises(PermanentTransportError, match="not JSON"):
        t.read_results(req, APIResponse(200, {}, "<html>proxy error</html>"))


def test_names_with_punctuation_are_quoted(tmp_path, fake):
    import dataclasses
    (msg,) = outgoing(1)
    with transport(tmp_path, fake) as t:
        (result,) = t.send_batch([dataclasses.replace(msg, to_name="Doe, Jane")])
    assert result.status is Status.SENT
    assert b'"To": "\\"Doe, Jane\\" <reader1@example.org>"' in fake.calls[0].raw  # the exact bytes
    assert fake.delivered[0].to == [("Doe, Jane", "reader1@example.org")]
