"""SendGrid: one personalised message per call; the pure builder; 202 + X-Message-Id; 400s."""

from __future__ import annotations

import dataclasses
import json

import pytest
import requests

from digest.errors import PermanentTransportError
from digest.transports.base import Status
from digest.transports.sendgrid import SendGridSettings, SendGridTransport, build_request

from tests.helpers.fake_providers import FakeSendGrid, outgoing, settings_for


@pytest.fixture
def fake(monkeypatch):
    with FakeSendGrid() as server:
        monkeypatch.setenv("SENDGRID_API_KEY", server.token)
        yield server


def transport(tmp_path, fake, **extra):
    return SendGridTransport(settings_for(tmp_path, "sendgrid", fake, **extra), sleep=lambda s: None)


def test_build_request_shape():
    (msg,) = outgoing(1)
    req = build_request([msg], SendGridSettings(base_url="https://sg.test"), "SG.tok")
    assert (req.method, req.url) == ("POST", "https://sg.test/v3/mail/send")
    assert req.headers["Authorization"] == "Bearer SG.tok"
    body = req.json
    assert body["personalizations"] == [{
        "to": [{"email": "reader1@example.org", "name": "Reader 1"}],
        "custom_args": {"digest_recipient_id": "1", "digest_message_id": "<issue-2023.1@example.org>"},
    }]
    assert body["from"] == {"email": "news@example.org", "name": "Innovation Hub News"}
    assert body["reply_to"] == {"email": "editor@example.org"}
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]  # SendGrid's order
    assert body["headers"]["List-Unsubscribe"] == "<https://example.org/u?t=1>"
    assert body["headers"]["Message-ID"] == "<issue-2023.1@example.org>"


def test_build_request_takes_exactly_one_message():
    with pytest.raises(ValueError, match="one personalised message each, got 2"):
        build_request(outgoing(2), SendGridSettings(), "tok")


def test_reserved_headers_are_not_sent_as_headers():
    (msg,) = outgoing(1)
    msg = dataclasses.replace(msg, headers=msg.headers + (("Reply-To", "x@example.org"), ("X-Campaign", "2023")))
    body = build_request([msg], SendGridSettings(), "tok").json
    assert "Reply-To" not in body["headers"] and body["headers"]["X-Campaign"] == "2023"


@pytest.mark.parametrize("name", ["Doe, Jane", "Smith; Ann", 'Ann "the reader" Lee'])
def test_names_go_as_they_are_because_sendgrid_quotes_them_itself(tmp_path, fake, name):
    (msg,) = outgoing(1)
    with transport(tmp_path, fake) as t:
        (result,) = t.send_batch([dataclasses.replace(msg, to_name=name)])
    assert result.status is Status.SENT
    sent = json.dumps({"email": "reader1@example.org", "name": name}).encode()
    assert sent in fake.calls[0].raw  # the exact bytes: no quotes added by digest
    assert fake.delivered[0].to == [(name, "reader1@example.org")]  # what the reader's mail app shows


def test_sent_result_carries_x_message_id(tmp_path, fake):
    with transport(tmp_path, fake) as t:
        (result,) = t.send_batch(outgoing(1))
    assert result.status is Status.SENT and result.code == "202"
    assert result.provider_id and len(result.provider_id) == 22


def test_same_address_twice_never_trips_the_duplicate_rule(tmp_path, fake):
    a, b = outgoing(2)
    b = dataclasses.replace(b, to_email=a.to_email)
    with transport(tmp_path, fake) as t:
        results = t.send_batch([a, b])
    assert [r.status for r in results] == [Status.SENT, Status.SENT]
    assert len(fake.calls) == 2 and fake.accepted[a.to_email] == 2


def test_fake_rejects_duplicates_and_too_many_personalizations_like_sendgrid(fake):
    # What SendGrid answers to the batch form digest does not use.
    body = build_request(outgoing(1), SendGridSettings(), fake.token).json
    body["personalizations"] = body["personalizations"] * 2
    resp = requests.post(f"{fake.url}/v3/mail/send", json=body, headers={"Authorization": f"Bearer {fake.token}"})
    assert resp.status_code == 400 and "duplicate" in resp.json()["errors"][0]["message"]
    body["personalizations"] = [{"to": [{"email": f"r{i}@example.org"}]} for i in range(1001)]
    resp = requests.post(f"{fake.url}/v3/mail/send", json=body, headers={"Authorization": f"Bearer {fake.token}"})
    assert resp.status_code == 400 and "limited to 1000" in resp.json()["errors"][0]["message"]


def test_400_about_the_sender_is_permanent_for_the_run(tmp_path, fake):
    fake.then(400, {"errors": [{"field": "from", "message": "The from address does not match a verified "
                                "Sender Identity.", "help": None}]})
    with transport(tmp_path, fake) as t, pytest.raises(PermanentTransportError) as info:
        t.send_batch(outgoing(1))
    assert "HTTP 400" in str(info.value) and "verified Sender Identity" in str(info.value)


def test_suppressed_address_is_accepted_as_sendgrid_does(tmp_path, fake):
    (msg,) = outgoing(1)
    fake.reject(msg.to_email, "inactive")
    with transport(tmp_path, fake) as t:
        (result,) = t.send_batch([msg])
    assert result.status is Status.SENT  # SendGrid drops it later; bounces arrive by webhook


# -- defect 6: a 400 on a personalizations.0.to field is not always about the address ---------------

def _refuse(fake, field, message):
    fake.then(400, {"errors": [{"field": field, "message": message, "help": None}]})


@pytest.mark.parametrize("field, message", [
    ("personalizations.0.to.0.email", "Does not contain a valid address."),
    ("personalizations.0.to.0.email", "The email address is invalid."),
])
def test_a_400_saying_the_address_is_invalid_suppresses_it(tmp_path, fake, field, message):
    _refuse(fake, field, message)
    with transport(tmp_path, fake) as t:
        (result,) = t.send_batch(outgoing(1))
    assert result.status is Status.FAILED and result.suppress and message in result.reason


@pytest.mark.parametrize("field, message", [
    ("personalizations.0.to.0.name", "The to.name field is limited to 256 characters."),
    ("personalizations.0.to.0.name", "Invalid type. Expected: string, given: integer."),
])
def test_a_400_about_the_readers_name_fails_the_reader_without_suppressing(tmp_path, fake, field, message):
    # NOT CONFIRMED from SendGrid's documentation: the wording of its errors about names; digest keys
    # on the field, and these messages are stand-ins.
    _refuse(fake, field, message)
    with transport(tmp_path, fake) as t:
        (result,) = t.send_batch(outgoing(1))
    assert result.status is Status.FAILED and not result.suppress and result.retryable
    assert message in result.reason


@pytest.mark.parametrize("field, message", [
    ("personalizations.0.to", "The to parameter is required for all personalization objects."),
    ("personalizations.0.to", "The to array is required for all personalization objects, and must have at "
                              "least one email object with a valid email address."),
])
def test_a_400_about_the_to_list_itself_is_digests_fault_and_stops_the_batch(tmp_path, fake, field, message):
    _refuse(fake, field, message)
    with transport(tmp_path, fake) as t, pytest.raises(PermanentTransportError, match="HTTP 400"):
        t.send_batch(outgoing(1))
