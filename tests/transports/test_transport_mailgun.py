"""Mailgun: recipient-variables on every call (no shared To list), region hosts, form fields."""

from __future__ import annotations

import json

import pytest

from digest.errors import ConfigError, DigestError, PermanentTransportError
from digest.transports.base import Status
from digest.transports.mailgun import MailgunSettings, MailgunTransport, build_request, check_private_to

from tests.helpers.fake_providers import FakeMailgun, outgoing, settings_for


@pytest.fixture
def fake(monkeypatch):
    with FakeMailgun() as server:
        monkeypatch.setenv("MAILGUN_API_KEY", server.token)
        yield server


def transport(tmp_path, fake, **extra):
    return MailgunTransport(settings_for(tmp_path, "mailgun", fake, **extra), sleep=lambda s: None)


def fields_of(req):
    return [(k, v[1]) for k, v in req.files]


def test_build_request_shape():
    (msg,) = outgoing(1)
    req = build_request([msg], MailgunSettings(base_url="https://mg.test", domain="mg.example.org"), "key-1")
    assert (req.method, req.url) == ("POST", "https://mg.test/v3/mg.example.org/messages")
    assert req.auth == ("api", "key-1")
    f = fields_of(req)
    assert ("to", "Reader 1 <reader1@example.org>") in f and [k for k, _ in f].count("to") == 1
    assert ("from", "Innovation Hub News <news@example.org>") in f
    assert ("h:Reply-To", "editor@example.org") in f
    assert ("h:List-Unsubscribe", "<https://example.org/u?t=1>") in f
    assert ("h:Message-ID", "<issue-2023.1@example.org>") in f
    rv = json.loads(dict(f)["recipient-variables"])
    assert rv == {"reader1@example.org": {"digest_recipient_id": 1}}


def test_private_to_guard_is_a_digest_error_not_a_traceback():
    check_private_to([("to", "a@example.org")])  # one recipient: nothing to hide
    with pytest.raises(PermanentTransportError, match="every recipient would see the whole To list") as info:
        check_private_to([("to", "a@example.org"), ("to", "b@example.org")])
    assert isinstance(info.value, DigestError) and "nothing was sent" in info.value.hint
    with pytest.raises(PermanentTransportError, match="b@example.org"):
        check_private_to([("to", "a@example.org"), ("to", "B <b@example.org>"),
                          ("recipient-variables", json.dumps({"a@example.org": {}}))])
    with pytest.raises(PermanentTransportError, match="recipient-variables is not a JSON object"):
        check_private_to([("to", "a@example.org"), ("to", "b@example.org"), ("recipient-variables", "{oops")])
    check_private_to([("to", "a@example.org"), ("to", "B <b@example.org>"),
                      ("recipient-variables", json.dumps({"a@example.org": {}, "b@example.org": {}}))])


def test_every_call_carries_recipient_variables_and_one_to(tmp_path, fake):
    msgs = outgoing(4)
    with transport(tmp_path, fake) as t:
        results = t.send_batch(msgs)
    assert all(r.status is Status.SENT and r.provider_id.endswith("@mg.example.org>") for r in results)
    assert len(fake.calls) == 4
    for call in fake.calls:
        names = [k for k, _ in call.payload]
        assert names.count("to") == 1 and "recipient-variables" in names
    assert fake.shared_to_calls == []


def test_fake_flags_a_shared_to_list(fake):
    # The fake notices what the real Mailgun would do with several `to` and no recipient-variables.
    import requests
    resp = requests.post(f"{fake.url}/v3/{fake.domain}/messages", auth=("api", fake.token),
                         data=[("from", "n@example.org"), ("to", "a@example.org"), ("to", "b@example.org"),
                               ("subject", "s"), ("text", "t")])
    assert resp.status_code == 200 and len(fake.shared_to_calls) == 1


def test_region_picks_the_host_and_base_url_wins(tmp_path):
    eu = MailgunTransport(settings_for(tmp_path, "mailgun", None, region="eu", domain="mg.example.org"))
    assert eu.config.base_url == "https://api.eu.mailgun.net"
    us = MailgunTransport(settings_for(tmp_path, "mailgun", None, domain="mg.example.org"))
    assert us.config.base_url == "https://api.mailgun.net"
    assert "api.mailgun.net/v3/mg.example.org/messages" in us.describe()


def test_bad_mailgun_settings(tmp_path):
    with pytest.raises(ConfigError, match=r"\[mailgun\] region = 'asia': expected one of us, eu"):
        MailgunTransport(settings_for(tmp_path, "mailgun", None, region="asia", domain="mg.example.org"))
    with pytest.raises(ConfigError, match=r"\[mailgun\]: domain is required"):
        MailgunTransport(settings_for(tmp_path, "mailgun", None))


def test_403_forbidden_plain_text_is_auth_error(tmp_path, fake, monkeypatch):
    from digest.errors import TransportAuthError
    monkeypatch.setenv("MAILGUN_API_KEY", "key-wrong")
    with transport(tmp_path, fake) as t, pytest.raises(TransportAuthError, match=r"\$MAILGUN_API_KEY.*HTTP 403.*Forbidden"):
        t.send_batch(outgoing(1))


def test_names_with_punctuation_are_quoted(tmp_path, fake):
    import dataclasses
    (msg,) = outgoing(1)
    with transport(tmp_path, fake) as t:
        (result,) = t.send_batch([dataclasses.replace(msg, to_name="Doe, Jane")])
    assert result.status is Status.SENT
    assert b'name="to"\r\n\r\n"Doe, Jane" <reader1@example.org>\r\n' in fake.calls[0].raw  # the exact bytes
    assert fake.delivered[0].to == [("Doe, Jane", "reader1@example.org")]
