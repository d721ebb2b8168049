"""Provider webhooks through the real server: `digest serve`'s waitress, over HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import json

from digest.store.ledger import Ledger
from tests.helpers.feedback import fixture, mailgun_signature, sent_send
from tests.helpers.web import request, running_server


def _suppressed(settings) -> dict[str, str]:
    with Ledger.for_settings(settings) as ledger:
        return {email: source for email, _reason, source, _at in ledger.iter_suppressions()}


def test_signed_webhooks_are_recorded_and_forged_ones_change_nothing(settings, monkeypatch):
    monkeypatch.setenv("POSTMARK_WEBHOOK_AUTH", "digest:s3cret-hook")
    monkeypatch.setenv("MAILGUN_WEBHOOK_SIGNING_KEY", "key-mailgun-signing")
    sent_send(settings, "2023-12", [("john@example.com", "883953f4-6105-42a2-a16a-77a8eac79483")])
    with running_server(settings, monkeypatch) as srv:
        forged = {"Content-Type": "application/json",
                  "Authorization": "Basic " + base64.b64encode(b"digest:guess").decode()}
        status, headers, _ = request(f"{srv.url}/webhooks/postmark", "POST",
                                     json.dumps(fixture("postmark_bounce")), forged)
        assert status == 401 and "www-authenticate" in headers
        assert _suppressed(settings) == {}
        good = {**forged, "Authorization": "Basic " + base64.b64encode(b"digest:s3cret-hook").decode()}
        status, _, body = request(f"{srv.url}/webhooks/postmark", "POST", json.dumps(fixture("postmark_bounce")), good)
        assert status == 200, body
        assert _suppressed(settings) == {"john@example.com": "postmark"}
        # Mailgun: an HMAC over timestamp + token with a wrong key is refused.
        payload = {**fixture("mailgun_failed"),
                   "signature": mailgun_signature("wrong-key", "1700000000", "a" * 50)}
        status, _, _ = request(f"{srv.url}/webhooks/mailgun", "POST", json.dumps(payload),
                               {"Content-Type": "application/json"})
        assert status in (401, 403)
    assert _suppressed(settings) == {"john@example.com": "postmark"}
