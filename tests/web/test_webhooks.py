"""Provider webhooks: each verifies its provider's documented signature before anything changes;
events (the providers' example payloads) are tied to their send's row, suppress what they should,
and a replay changes nothing."""

from __future__ import annotations

import base64
import json

import pytest
from werkzeug.test import Client

from digest.store.events import send_feedback
from digest.store.ledger import Ledger, ledger_path
from digest.web import webhooks
from digest.web.app import WebApp
from tests.helpers.feedback import SendGridSigner, SNSSigner, fixture, mailgun_signature, sent_send, svix_headers

SVIX_SECRET = "whsec_" + base64.b64encode(b"a test secret of thirty-two bytes").decode()
NOW = 1_700_000_000


@pytest.fixture
def client(settings, monkeypatch):
    monkeypatch.setattr(webhooks, "clock", lambda: NOW)
    return Client(WebApp(settings, modules=("digest.web.webhooks",)))


def suppressions(settings) -> dict[str, tuple[str, str]]:
    if not ledger_path(settings).exists():
        return {}
    with Ledger.for_settings(settings, readonly=True) as ledger:
        return {e: (r, s) for e, r, s, _ in ledger.iter_suppressions()}


def event_count(settings) -> int:
    if not ledger_path(settings).exists():
        return 0  # nothing was even opened for writing
    with Ledger.for_settings(settings, readonly=True) as ledger:
        return ledger._read("SELECT count(*) FROM feedback_events")[0][0]


def feedback(settings, slug="2023-12"):
    with Ledger.for_settings(settings, readonly=True) as ledger:
        return send_feedback(ledger, ledger.get_send(slug).id)


def basic(user_pass: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(user_pass.encode()).decode()}


# -- Postmark: basic auth ---------------------------------------------------------------------------

def test_postmark_bounce_spam_and_delivery_are_recorded_against_the_row(settings, client, monkeypatch):
    monkeypatch.setenv("POSTMARK_WEBHOOK_AUTH", "digest:s3cret-hook")
    sent_send(settings, "2023-12", [("john@example.com", "883953f4-6105-42a2-a16a-77a8eac79483"),
                                    ("ann@example.com", "00000000-0000-0000-0000-000000000000")])
    delivery = {**fixture("postmark_delivery"), "Recipient": "ann@example.com"}
    for payload in (fixture("postmark_bounce"), delivery):
        answer = client.post("/webhooks/postmark", json=payload, headers=basic("digest:s3cret-hook"))
        assert answer.status_code == 200, answer.get_data(as_text=True)
    assert suppressions(settings)["john@example.com"][1] == "postmark"
    assert suppressions(settings)["john@example.com"][0].startswith("bounce: The server was unable")
    counts = feedback(settings)
    assert (counts.sent, counts.hard_bounced, counts.delivered) == (2, 1, 1)
    # a replay of the same bounce changes nothing
    client.post("/webhooks/postmark", json=fixture("postmark_bounce"), headers=basic("digest:s3cret-hook"))
    assert event_count(settings) == 2


def test_postmark_refuses_wrong_or_missing_credentials_and_changes_nothing(settings, client, monkeypatch):
    monkeypatch.setenv("POSTMARK_WEBHOOK_AUTH", "digest:s3cret-hook")
    sent_send(settings, "2023-12", [("john@example.com", "883953f4-6105-42a2-a16a-77a8eac79483")])
    for headers in ({}, basic("digest:wrong"), {"Authorization": "Bearer s3cret-hook"}):
        answer = client.post("/webhooks/postmark", json=fixture("postmark_spam"), headers=headers)
        assert answer.status_code == 401 and "WWW-Authenticate" in answer.headers
    assert event_count(settings) == 0 and suppressions(settings) == {}


def test_postmark_unconfigured_is_forbidden(settings, client, monkeypatch):
    monkeypatch.delenv("POSTMARK_WEBHOOK_AUTH", raising=False)
    answer = client.post("/webhooks/postmark", json=fixture("postmark_bounce"), headers=basic("a:b"))
    assert answer.status_code == 403


def test_postmark_subscription_change_suppresses_as_unsubscribed(settings, client, monkeypatch):
    monkeypatch.setenv("POSTMARK_WEBHOOK_AUTH", "u:p")
    client.post("/webhooks/postmark", json=fixture("postmark_subscription_change"), headers=basic("u:p"))
    reason, source = suppressions(settings)["bounced-address@wildbit.com"]
    assert reason.startswith("unsubscribed") and source == "postmark"


# -- SendGrid: ECDSA-signed event webhook -------------------------------------------------------------

def test_sendgrid_signed_events(settings, client, monkeypatch):
    signer = SendGridSigner()
    monkeypatch.setenv("SENDGRID_WEBHOOK_KEY", signer.verification_key)
    sent_send(settings, "2023-12", [("example@test.com", "14c5d75ce93.dfd.64b469")])
    body = json.dumps(fixture("sendgrid_events")).encode()
    answer = client.post("/webhooks/sendgrid", data=body, headers={**signer.headers(body),
                                                                    "Content-Type": "application/json"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert event_count(settings) == 4  # processed and open are not kept
    counts = feedback(settings)
    assert (counts.hard_bounced, counts.complained, counts.delivered) == (1, 1, 1)
    assert suppressions(settings)["example@test.com"][1] == "sendgrid"


def test_sendgrid_refuses_a_tampered_body_or_another_key(settings, client, monkeypatch):
    signer = SendGridSigner()
    monkeypatch.setenv("SENDGRID_WEBHOOK_KEY", signer.verification_key)
    body = json.dumps(fixture("sendgrid_events")).encode()
    headers = signer.headers(body)
    tampered = body.replace(b"example@test.com", b"victim@example.org")
    assert client.post("/webhooks/sendgrid", data=tampered, headers=headers).status_code == 403
    other = SendGridSigner().headers(body)
    assert client.post("/webhooks/sendgrid", data=body, headers=other).status_code == 403
    assert client.post("/webhooks/sendgrid", data=body).status_code == 403
    assert event_count(settings) == 0


# -- Mailgun: HMAC, timestamp window, tokens used once ----------------------------------------------------

def mailgun_payload(key: str, timestamp: str, token: str = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0"):
    return {**fixture("mailgun_failed"), "signature": mailgun_signature(key, timestamp, token)}


def test_mailgun_signed_failure_is_a_hard_bounce(settings, client, monkeypatch):
    monkeypatch.setenv("MAILGUN_WEBHOOK_SIGNING_KEY", "key-mailgun-signing")
    sent_send(settings, "2023-12", [("alice@example.com", "<20130503182626.18666.16540@sandbox.mailgun.org>")])
    answer = client.post("/webhooks/mailgun", json=mailgun_payload("key-mailgun-signing", str(NOW)))
    assert answer.status_code == 200
    assert feedback(settings).hard_bounced == 1 and "alice@example.com" in suppressions(settings)


def test_mailgun_refuses_bad_signatures_old_timestamps_and_reused_tokens(settings, client, monkeypatch):
    monkeypatch.setenv("MAILGUN_WEBHOOK_SIGNING_KEY", "key-mailgun-signing")
    assert client.post("/webhooks/mailgun", json=mailgun_payload("another-key", str(NOW))).status_code == 403
    assert client.post("/webhooks/mailgun", json=fixture("mailgun_failed")).status_code == 403  # the doc's own
    stale = mailgun_payload("key-mailgun-signing", str(NOW - 3600))
    assert client.post("/webhooks/mailgun", json=stale).status_code == 403
    assert event_count(settings) == 0
    fresh = mailgun_payload("key-mailgun-signing", str(NOW - 10), token="t" * 50)
    assert client.post("/webhooks/mailgun", json=fresh).status_code == 200
    assert client.post("/webhooks/mailgun", json=fresh).status_code == 403  # the same token again
    assert event_count(settings) == 1


# -- Resend: Svix signatures ---------------------------------------------------------------------------

def test_resend_svix_signed_bounce(settings, client, monkeypatch):
    monkeypatch.setenv("RESEND_WEBHOOK_SECRET", SVIX_SECRET)
    sent_send(settings, "2023-12", [("delivered@resend.dev", "56761188-7520-42d8-8898-ff6fc54ce618")])
    body = json.dumps(fixture("resend_bounced")).encode()
    headers = svix_headers(SVIX_SECRET, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", str(NOW), body)
    assert client.post("/webhooks/resend", data=body, headers=headers).status_code == 200
    assert feedback(settings).hard_bounced == 1
    assert client.post("/webhooks/resend", data=body, headers=headers).status_code == 200  # Svix retries
    assert event_count(settings) == 1


def test_resend_refuses_bad_or_old_signatures(settings, client, monkeypatch):
    monkeypatch.setenv("RESEND_WEBHOOK_SECRET", SVIX_SECRET)
    body = json.dumps(fixture("resend_bounced")).encode()
    wrong = svix_headers("whsec_" + base64.b64encode(b"x" * 32).decode(), "msg_1", str(NOW), body)
    assert client.post("/webhooks/resend", data=body, headers=wrong).status_code == 403
    old = svix_headers(SVIX_SECRET, "msg_1", str(NOW - 3600), body)
    assert client.post("/webhooks/resend", data=body, headers=old).status_code == 403
    assert event_count(settings) == 0


# -- Amazon SES through SNS ------------------------------------------------------------------------------

TOPIC = "arn:aws:sns:us-west-2:123456789012:MyTopic"
CERT_URL = "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"


@pytest.fixture
def sns(settings, monkeypatch):
    settings.feedback.ses_topics = [TOPIC]
    signer = SNSSigner()
    fetched: list[str] = []

    def fake_fetch(url: str) -> bytes:
        fetched.append(url)
        return signer.pem if url.endswith(".pem") else b"<ConfirmSubscriptionResponse/>"
    monkeypatch.setattr(webhooks, "fetch", fake_fetch)
    monkeypatch.setattr(webhooks, "_CERTIFICATES", {})
    return signer, fetched


def notification(message: dict, **extra) -> dict:
    return {"Type": "Notification", "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324", "TopicArn": TOPIC,
            "Message": json.dumps(message), "Timestamp": "2016-01-27T14:59:38.237Z",
            "SigningCertURL": CERT_URL, **extra}


@pytest.mark.parametrize("version", ["1", "2"])
def test_ses_bounce_through_sns(settings, client, sns, version):
    signer, fetched = sns
    sent_send(settings, "2023-12", [("jane@example.com", "Ok 00000138111222aa")])
    bounce = fixture("ses_bounce")
    bounce["mail"]["commonHeaders"]["messageId"] = _digest_message_id(settings, "2023-12", "jane@example.com")
    answer = client.post("/webhooks/ses", data=json.dumps(signer.sign(notification(bounce), version)))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert feedback(settings).hard_bounced == 1 and fetched == [CERT_URL]


def _digest_message_id(settings, slug, email):
    from digest.store.events import slug_of_message_id

    mid = f"<{slug}.{'0' * 24}@example.org>"
    assert slug_of_message_id(mid) == slug
    return mid


def test_ses_refuses_forged_foreign_or_unlisted_messages(settings, client, sns):
    signer, fetched = sns
    good = signer.sign(notification(fixture("ses_bounce")))
    forged = {**good, "Message": good["Message"].replace("jane@", "someone@")}
    assert client.post("/webhooks/ses", data=json.dumps(forged)).status_code == 403
    elsewhere = signer.sign(notification(fixture("ses_bounce"), SigningCertURL="https://attacker.example/x.pem"))
    assert client.post("/webhooks/ses", data=json.dumps(elsewhere)).status_code == 403
    lookalike = signer.sign(notification(fixture("ses_bounce"),
                                         SigningCertURL="https://sns.us-west-2.amazonaws.com.evil.example/c.pem"))
    assert client.post("/webhooks/ses", data=json.dumps(lookalike)).status_code == 403
    other_topic = signer.sign({**notification(fixture("ses_bounce")), "TopicArn": "arn:aws:sns:x:1:other"})
    assert client.post("/webhooks/ses", data=json.dumps(other_topic)).status_code == 403
    assert event_count(settings) == 0
    assert all(url == CERT_URL for url in fetched)  # nothing fetched from anywhere else


def test_ses_subscription_confirmation_visits_the_sns_url(settings, client, sns):
    signer, fetched = sns
    confirm = signer.sign({"Type": "SubscriptionConfirmation", "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
                           "Token": "2336412f37f", "TopicArn": TOPIC,
                           "Message": "You have chosen to subscribe to the topic.",
                           "SubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription"
                                           "&TopicArn=arn:aws:sns:us-west-2:123456789012:MyTopic&Token=2336412f37f",
                           "Timestamp": "2012-04-26T20:45:04.751Z", "SigningCertURL": CERT_URL})
    answer = client.post("/webhooks/ses", data=json.dumps(confirm))
    assert answer.status_code == 200 and fetched[-1].startswith("https://sns.us-west-2.amazonaws.com/?Action=")
