"""Provider event webhooks: one POST route per provider, each verifying the provider's documented
authenticity mechanism before it acts on anything (digest.feedback.verify), then recording the
normalised events (digest.feedback.record). A request that fails verification gets 401/403 and
changes nothing; a replayed event changes nothing either.

Secrets come from environment variables only:

| route               | variable                       | what it holds                                   |
|---------------------|--------------------------------|-------------------------------------------------|
| /webhooks/postmark  | POSTMARK_WEBHOOK_AUTH          | `user:password` of the webhook URL's basic auth |
| /webhooks/sendgrid  | SENDGRID_WEBHOOK_KEY           | the signed event webhook's verification key     |
| /webhooks/mailgun   | MAILGUN_WEBHOOK_SIGNING_KEY    | the HTTP webhook signing key                    |
| /webhooks/resend    | RESEND_WEBHOOK_SECRET          | the webhook's signing secret (`whsec_…`)        |
| /webhooks/ses       | — ([feedback] ses_topics)      | SNS topics accepted; signatures use AWS's certificates |
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from typing import Any, Callable

import requests
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from digest.clock import iso_stamp, utc_now
from digest.config import secret
from digest.errors import ConfigError
from digest.feedback import normalise, verify
from digest.feedback.record import record
from digest.web.app import text_response

log = logging.getLogger("digest.web.webhooks")

ROUTES = [
    Rule("/webhooks/postmark", methods=["POST"], endpoint="postmark"),
    Rule("/webhooks/sendgrid", methods=["POST"], endpoint="sendgrid"),
    Rule("/webhooks/mailgun", methods=["POST"], endpoint="mailgun"),
    Rule("/webhooks/resend", methods=["POST"], endpoint="resend"),
    Rule("/webhooks/ses", methods=["POST"], endpoint="ses"),
]

SECRETS = {"postmark": "POSTMARK_WEBHOOK_AUTH", "sendgrid": "SENDGRID_WEBHOOK_KEY",
           "mailgun": "MAILGUN_WEBHOOK_SIGNING_KEY", "resend": "RESEND_WEBHOOK_SECRET"}
MAX_BODY = 10 * 1024 * 1024   # SendGrid posts batches of events; nobody legitimate sends more
FETCH_TIMEOUT = (5.0, 10.0)   # (connect, read) seconds for SNS certificates and confirmations
_CERTIFICATES: dict[str, bytes] = {}   # SNS signing certificates by URL (they change rarely)
clock: Callable[[], float] = time.time  # tests move it


def fetch(url: str) -> bytes:
    """GET an SNS URL (already checked to be https on an SNS host); no redirects."""
    response = requests.get(url, timeout=FETCH_TIMEOUT, allow_redirects=False)
    response.raise_for_status()
    return response.content


def _secret(provider: str) -> str | None:
    try:
        return secret(SECRETS[provider], purpose=f"the {provider} webhook's secret")
    except ConfigError:
        log.error("%s webhook refused: %s is not set", provider, SECRETS[provider])
        return None


def _refuse(status: int, why: str, provider: str) -> Response:
    log.warning("%s webhook refused (%d): %s", provider, status, why)
    headers = [("WWW-Authenticate", 'Basic realm="digest webhooks"')] if status == 401 else None
    return text_response("unauthorized" if status == 401 else "forbidden", status, headers=headers)


def _body(request: Request) -> bytes | None:
    if (request.content_length or 0) > MAX_BODY:
        return None
    data = request.get_data(cache=True)
    return data if len(data) <= MAX_BODY else None


def _json(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def _accept(app, events: list, provider: str, nonce: str | None = None) -> Response:
    result = record(app.settings, events, nonce=nonce)
    log.info("%s webhook: %d new events (%d replayed), %d suppressed", provider, result.new, result.replayed,
             len(result.suppressed))
    return text_response(f"ok: {result.new} recorded, {result.replayed} already known")


def postmark(app, request: Request) -> Response:
    """Postmark's bounce, spam complaint, delivery and subscription-change webhooks (basic auth)."""
    expected = _secret("postmark")
    if expected is None:
        return _refuse(403, "not configured", "postmark")
    if not verify.basic_auth_ok(request.headers.get("Authorization"), expected):
        return _refuse(401, "wrong or missing basic auth", "postmark")
    payload = _json(_body(request) or b"")
    if not isinstance(payload, dict):
        return text_response("expected one JSON object", 400)
    return _accept(app, normalise.postmark_events(payload), "postmark")


def sendgrid(app, request: Request) -> Response:
    """SendGrid's signed event webhook (ECDSA over timestamp + body)."""
    key = _secret("sendgrid")
    body = _body(request)
    if key is None or body is None:
        return _refuse(403, "not configured" if key is None else "body too large", "sendgrid")
    if not verify.sendgrid_ok(key, request.headers.get("X-Twilio-Email-Event-Webhook-Signature"),
                              request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp"), body):
        return _refuse(403, "signature does not verify", "sendgrid")
    payload = _json(body)
    if not isinstance(payload, list):
        return text_response("expected a JSON array of events", 400)
    return _accept(app, normalise.sendgrid_events(payload), "sendgrid")


def mailgun(app, request: Request) -> Response:
    """Mailgun's webhooks (JSON): HMAC signature, a recent timestamp and a token not seen before."""
    from digest.store.events import forget_nonces, nonce_seen
    from digest.store.ledger import Ledger

    key = _secret("mailgun")
    payload = _json(_body(request) or b"")
    if key is None or not isinstance(payload, dict) or not isinstance(payload.get("signature"), dict):
        return _refuse(403, "not configured" if key is None else "no signature", "mailgun")
    sig = payload["signature"]
    timestamp, token = str(sig.get("timestamp", "")), str(sig.get("token", ""))
    if not verify.mailgun_ok(key, timestamp, token, str(sig.get("signature", ""))):
        return _refuse(403, "signature does not verify", "mailgun")
    tolerance = app.settings.feedback.webhook_tolerance
    if not verify.fresh(timestamp, clock(), tolerance):
        return _refuse(403, f"timestamp {timestamp} is outside the {tolerance} s window", "mailgun")
    nonce = f"mailgun:{token}"
    with Ledger.for_settings(app.settings) as ledger:
        forget_nonces(ledger, iso_stamp(utc_now() - timedelta(seconds=2 * tolerance + 60)))
        if nonce_seen(ledger, nonce):
            return _refuse(403, "token already used (a replay)", "mailgun")
    return _accept(app, normalise.mailgun_events(payload), "mailgun", nonce=nonce)


def resend(app, request: Request) -> Response:
    """Resend's webhooks, signed by Svix (svix-id, svix-timestamp, svix-signature)."""
    key = _secret("resend")
    body = _body(request)
    if key is None or body is None:
        return _refuse(403, "not configured" if key is None else "body too large", "resend")
    msg_id, timestamp = request.headers.get("svix-id"), request.headers.get("svix-timestamp")
    if not verify.svix_ok(key, msg_id, timestamp, request.headers.get("svix-signature"), body):
        return _refuse(403, "signature does not verify", "resend")
    if not verify.fresh(timestamp, clock(), app.settings.feedback.webhook_tolerance):
        return _refuse(403, f"timestamp {timestamp} is outside the window", "resend")
    payload = _json(body)
    if not isinstance(payload, dict):
        return text_response("expected one JSON object", 400)
    return _accept(app, normalise.resend_events(payload, str(msg_id)), "resend")


def _certificate(url: str) -> bytes | None:
    if url not in _CERTIFICATES:
        try:
            _CERTIFICATES[url] = fetch(url)
        except requests.RequestException as exc:
            log.error("ses webhook: cannot fetch the signing certificate %s: %s", url, exc)
            return None
    return _CERTIFICATES[url]


def ses(app, request: Request) -> Response:
    """Amazon SES notifications through SNS: signed messages from an accepted topic; subscriptions confirmed."""
    message = _json(_body(request) or b"")
    if not isinstance(message, dict):
        return _refuse(403, "not an SNS message", "ses")
    topic = message.get("TopicArn")
    if topic not in app.settings.feedback.ses_topics:
        return _refuse(403, f"topic {topic!r} is not in [feedback] ses_topics", "ses")
    cert_url = message.get("SigningCertURL") or message.get("SigningCertUrl")
    if not verify.sns_url_ok(cert_url) or not str(cert_url).endswith(".pem"):
        return _refuse(403, f"signing certificate URL {cert_url!r} is not on an SNS host", "ses")
    certificate = _certificate(str(cert_url))
    if certificate is None or not verify.sns_ok(message, certificate):
        return _refuse(403, "signature does not verify", "ses")
    kind = message.get("Type")
    if kind == "SubscriptionConfirmation":
        return _confirm(message)
    if kind != "Notification":
        return text_response("ok")
    inner = _json(str(message.get("Message", "")).encode("utf-8"))
    if not isinstance(inner, dict):
        return text_response("ok: not an SES notification")
    return _accept(app, normalise.ses_events(inner, str(message.get("MessageId"))), "ses")


def _confirm(message: dict) -> Response:
    url = message.get("SubscribeURL")
    if not verify.sns_url_ok(url):
        return _refuse(403, f"SubscribeURL {url!r} is not on an SNS host", "ses")
    try:
        fetch(str(url))
    except requests.RequestException as exc:
        log.error("ses webhook: confirming the subscription to %s failed: %s", message.get("TopicArn"), exc)
        return text_response("could not confirm the subscription", 502)
    log.info("ses webhook: subscribed to %s", message.get("TopicArn"))
    return text_response("ok: subscribed")
