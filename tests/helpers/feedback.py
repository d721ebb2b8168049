"""Feedback test helpers: a finished send in the ledger, and webhook requests signed the way each
provider documents its signature (SendGrid ECDSA, Mailgun HMAC, Svix for Resend, SNS RSA)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from digest.addresses import address_key
from digest.feedback.verify import sns_string_to_sign
from digest.store.ledger import Ledger
from digest.store.rows import Outcome

WEBHOOK_DATA = Path(__file__).resolve().parent.parent / "data" / "webhooks"


def fixture(name: str):
    """A provider's documented example payload (tests/data/webhooks/<name>.json)."""
    return json.loads((WEBHOOK_DATA / f"{name}.json").read_text(encoding="utf-8"))


def sent_send(settings, slug: str, people: list[tuple[str, str | None]], *, started: str | None = None) -> list[int]:
    """A finished send of `slug` to (email, provider id) pairs, everyone sent; returns the row ids."""
    with Ledger.for_settings(settings) as ledger:
        send = ledger.create_send(slug, content_fp="c", list_fp="l", settings_fp="s", list_path="subs.csv",
                                  subject="Hi", recipients=[(address_key(e), e, "", {}, (), i + 2)
                                                            for i, (e, _) in enumerate(people)])
        rows = ledger.claim(send.id, len(people) or 1)
        by_email = dict(people)
        ledger.record([Outcome(r.id, "sent", provider_id=by_email[r.email]) for r in rows])
        ledger.set_send_state(send.id, "finished")
        if started:
            ledger._db.execute("UPDATE sends SET started_at=? WHERE id=?", (started, send.id))
        return [r.id for r in rows]


class SendGridSigner:
    """An ECDSA P-256 key pair: the public half is the 'verification key' SendGrid shows."""

    def __init__(self):
        self.key = ec.generate_private_key(ec.SECP256R1())
        der = self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        self.verification_key = base64.b64encode(der).decode()

    def headers(self, body: bytes, timestamp: str = "1700000000") -> dict[str, str]:
        signature = self.key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
                "X-Twilio-Email-Event-Webhook-Timestamp": timestamp}


def mailgun_signature(key: str, timestamp: str, token: str) -> dict[str, str]:
    """Mailgun's signature block: hex HMAC-SHA256(key, timestamp + token)."""
    digest = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return {"timestamp": timestamp, "token": token, "signature": digest}


def svix_headers(secret: str, msg_id: str, timestamp: str, body: bytes) -> dict[str, str]:
    """Svix's headers: v1,base64(HMAC-SHA256(base64-decoded secret, id.timestamp.body))."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    sig = base64.b64encode(hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest())
    return {"svix-id": msg_id, "svix-timestamp": timestamp, "svix-signature": f"v1,{sig.decode()}"}


class SNSSigner:
    """A self-signed RSA certificate standing in for AWS's SNS signing certificate."""

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=30)).sign(self.key, hashes.SHA256()))
        self.pem = cert.public_bytes(serialization.Encoding.PEM)

    def sign(self, message: dict, version: str = "1") -> dict:
        message = {**message, "SignatureVersion": version}
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(sns_string_to_sign(message), padding.PKCS1v15(), algorithm)
        return {**message, "Signature": base64.b64encode(signature).decode()}
