"""Each provider's webhook authenticity check, as the provider documents it. Pure functions: the
request's parts and the secret in, True or False out (a malformed signature is False, never a crash).

* Postmark — HTTP basic auth: the credentials are part of the webhook URL set in Postmark.
* SendGrid — the signed event webhook: an ECDSA (P-256, SHA-256) signature over timestamp + raw body,
  checked with the verification key SendGrid shows (base64 of the DER public key).
* Mailgun — HMAC-SHA256 of timestamp + token with the webhook signing key, hex; the timestamp must be
  recent and the token unused (the caller keeps the tokens seen).
* Resend — Svix: HMAC-SHA256 of "<svix-id>.<svix-timestamp>.<body>" with the base64 secret after
  `whsec_`, base64; `svix-signature` lists one or more `v1,<signature>`.
* Amazon SES through SNS — an RSA signature (SignatureVersion 1: SHA1, 2: SHA256) over the message's
  fields, checked against the signing certificate, fetched only from https://sns.<region>.amazonaws.com.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding


def basic_auth_ok(authorization: str | None, expected: str) -> bool:
    """Whether an Authorization header carries the expected 'user:password' (constant time)."""
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() != "basic" or not expected:
        return False
    try:
        given = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(given, expected.encode("utf-8"))


def fresh(timestamp: str | None, now: float, tolerance: float) -> bool:
    """Whether a request's epoch-seconds timestamp is within `tolerance` seconds of now."""
    try:
        return abs(now - float(timestamp or "")) <= tolerance
    except ValueError:
        return False


def sendgrid_ok(verification_key: str, signature: str | None, timestamp: str | None, body: bytes) -> bool:
    """SendGrid's signed event webhook: ECDSA-SHA256 over timestamp + body with the verification key."""
    if not signature or not timestamp:
        return False
    try:
        key = serialization.load_der_public_key(base64.b64decode(verification_key.strip()))
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return False
        key.verify(base64.b64decode(signature), timestamp.encode("utf-8") + body, ec.ECDSA(hashes.SHA256()))
        return True
    except (InvalidSignature, ValueError, binascii.Error, TypeError):
        return False


def mailgun_ok(signing_key: str, timestamp: str, token: str, signature: str) -> bool:
    """Mailgun's webhook signature: hex HMAC-SHA256 of timestamp + token with the signing key."""
    if not (signing_key and timestamp and token and signature):
        return False
    expected = hmac.new(signing_key.encode("utf-8"), f"{timestamp}{token}".encode("utf-8"), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, str(signature))


def svix_ok(secret: str, msg_id: str | None, timestamp: str | None, signatures: str | None, body: bytes) -> bool:
    """A Svix signature (Resend): any `v1,<base64>` in the header matching HMAC-SHA256 of id.timestamp.body."""
    if not (secret and msg_id and timestamp and signatures):
        return False
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"))
    except (binascii.Error, ValueError):
        return False
    signed = f"{msg_id}.{timestamp}.".encode("utf-8") + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")
    for item in signatures.split():
        version, _, value = item.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False


# Where SNS signing certificates (and subscription confirmations) may come from: AWS's SNS hosts only.
_SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")

_SNS_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}


def sns_url_ok(url: str | None) -> bool:
    """Whether a URL is https on an SNS host (sns.<region>.amazonaws.com), with no credentials or port."""
    parts = urlsplit(url or "")
    return (parts.scheme == "https" and not parts.username and parts.port is None
            and bool(_SNS_HOST.match(parts.hostname or "")))


def sns_string_to_sign(message: dict) -> bytes | None:
    """The text SNS signs: each field's name and value on their own lines, in the documented order."""
    fields = _SNS_FIELDS.get(str(message.get("Type")))
    if fields is None:
        return None
    out = []
    for name in fields:
        if name == "Subject" and message.get(name) is None:
            continue  # only a Notification with a subject signs it
        if not isinstance(message.get(name), str):
            return None
        out.append(f"{name}\n{message[name]}\n")
    return "".join(out).encode("utf-8")


def sns_ok(message: dict, certificate_pem: bytes) -> bool:
    """Whether an SNS message's Signature verifies against its signing certificate."""
    data = sns_string_to_sign(message)
    algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(str(message.get("SignatureVersion")))
    if data is None or algorithm is None or not isinstance(message.get("Signature"), str):
        return False
    try:
        cert = x509.load_pem_x509_certificate(certificate_pem)
        cert.public_key().verify(base64.b64decode(message["Signature"]), data, padding.PKCS1v15(), algorithm)
        return True
    except (InvalidSignature, ValueError, binascii.Error, TypeError, AttributeError):
        return False
