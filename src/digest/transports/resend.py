"""Resend: POST /emails/batch, up to 100 complete messages per call.

Each personalised message is its own item of the array. Two request headers matter:

* `Idempotency-Key` — one key per attempt to deliver one content to one set of readers. Resend
  answers a repeated key from its 24-hour store without sending, and refuses it (409) with other
  content, so the key must not be derived from anything that repeats between sends (Message-IDs
  are the same for a test send, an edited issue and a retry). A fresh random key is made for each
  call; only when a call's outcome is unknown (timeout, lost connection, 5xx, 429, or Resend's 409
  "still in progress") is its key kept, and the retry of exactly that content reuses it.
* `x-batch-validation: permissive` — an invalid item no longer fails the whole batch: valid items
  are sent and the answer lists the invalid ones as {index, message} under `errors`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

from digest.errors import ConfigError, TransientTransportError
from digest.outgoing import OutgoingMessage
from digest.sections import setting
from digest.text import header_safe
from digest.transports.base import AccountRefusedError, SendResult, Status
from digest.transports.http import (
    APIRequest,
    APIResponse,
    HTTPSettings,
    HTTPTransport,
    ascii_domain,
    display_address,
    message_headers,
    sender_address,
    wait_from_headers,
)

API_URL = "https://api.resend.com"
MAX_BATCH = 100  # Resend's documented limit per /emails/batch call


@dataclass
class ResendSettings(HTTPSettings):
    """[resend] in digest.toml."""

    token_env: str = setting("RESEND_API_KEY", "Name of the environment variable holding the Resend API key.")
    base_url: str = setting(API_URL, "Where calls go: Resend's API; change it for a proxy or a local test server.")
    batch_validation: str = setting("permissive", "`permissive`: an invalid message fails alone; `strict`: one "
                                    "invalid message fails the whole call.")


QUOTA_ERRORS = {"daily_quota_exceeded": "daily", "monthly_quota_exceeded": "monthly"}  # API reference, Errors
# An item error about the `to` address itself being invalid, however the field name is quoted.
_INVALID_TO = re.compile(r"\binvalid\s+[`'\"]?to[`'\"]?(\s+(field|address)|\b)|[`'\"]to[`'\"]\s+field\s+is\s+invalid",
                         re.I)


def content_digest(items: Sequence[dict]) -> str:
    """A digest of exactly what one call carries (every field of every message, in order)."""
    canonical = json.dumps(list(items), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class PendingKeys:
    """Idempotency keys of calls whose outcome is unknown, by the digest of what they carried.

    Shared by the Resend transports of one process (the --connections workers may retry each
    other's batches); bounded, oldest first out, far below Resend's 24-hour window in practice.
    """

    def __init__(self, limit: int = 10_000):
        self._keys: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        self._limit = limit

    def key_for(self, digest: str) -> str:
        """The kept key for this content, or a fresh one (≤ 256 characters, as Resend requires)."""
        with self._lock:
            return self._keys.get(digest) or f"digest-{uuid.uuid4().hex}"

    def keep(self, digest: str, key: str) -> None:
        """The outcome of the call is unknown: its retry must reuse the key."""
        with self._lock:
            self._keys[digest] = key
            self._keys.move_to_end(digest)
            while len(self._keys) > self._limit:
                self._keys.popitem(last=False)

    def forget(self, digest: str) -> None:
        """The outcome is known: the next call with this content is a new attempt, with a new key."""
        with self._lock:
            self._keys.pop(digest, None)


PENDING_KEYS = PendingKeys()


def build_request(messages: Sequence[OutgoingMessage], cfg: ResendSettings, token: str,
                  key: str | None = None) -> APIRequest:
    """The /emails/batch call for up to 100 messages (pure: no network). Without `key` the
    Idempotency-Key is the content digest; the transport gives each attempt its own key."""
    if not 0 < len(messages) <= MAX_BATCH:
        raise ValueError(f"Resend takes 1–{MAX_BATCH} messages per call, got {len(messages)}")
    items = []
    for m in messages:
        # Resend takes RFC 5322 names, quoted ones too (it fixed its old bug with punctuation in
        # names; django-anymail removed its workaround in v13.0).
        to = display_address(m.to_name, ascii_domain(m.to_email))
        item = {"from": sender_address(m.from_addr), "to": [to], "subject": header_safe(m.subject),
                "html": m.html, "text": m.text, "headers": dict(message_headers(m))}
        if m.reply_to:
            item["reply_to"] = sender_address(m.reply_to)
        items.append(item)
    return APIRequest(
        method="POST", url=f"{cfg.base_url}/emails/batch", messages=tuple(messages),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                 "Accept": "application/json", "Idempotency-Key": key or f"digest-{content_digest(items)}",
                 "x-batch-validation": cfg.batch_validation},
        json=items)


def suppressible(error: dict) -> bool:
    """Whether a permissive-mode item error says the reader's address is invalid.

    Resend's item errors carry only `index` and `message` (Resend docs, "Batch validation modes"):
    the field and the problem are read from the message, whatever quoting it uses (and a `name`
    of invalid_to_address, should Resend add one, is taken at its word). A missing or mistyped
    `to` is digest's fault, never the reader's.
    """
    if str(error.get("name") or "") == "invalid_to_address":
        return True
    return bool(_INVALID_TO.search(str(error.get("message") or "")))


def error_name(response: APIResponse) -> str:
    """The `name` of a Resend error body ("validation_error", "daily_quota_exceeded", …), or ""."""
    try:
        data = response.json()
    except ValueError:
        return ""
    return str(data.get("name", "")) if isinstance(data, dict) else ""


class ResendTransport(HTTPTransport):
    """Send through Resend's batch email API."""

    name = "resend"
    label = "Resend"
    max_batch = MAX_BATCH
    settings_class = ResendSettings
    request_builder = staticmethod(build_request)
    reset_header = "ratelimit-reset"  # seconds until the window resets
    reset_kind = "delta"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._digests: dict[str, str] = {}  # Idempotency-Key of a built call → its content digest

    @classmethod
    def check_config(cls, cfg: ResendSettings, where: str) -> None:
        """batch_validation is one of Resend's two modes."""
        if cfg.batch_validation not in ("permissive", "strict"):
            raise ConfigError(f"{where} batch_validation = {cfg.batch_validation!r}: "
                              "expected 'permissive' or 'strict'.")

    def describe(self) -> str:
        """Endpoint and validation mode."""
        return f"resend {self.config.base_url}/emails/batch ({self.config.batch_validation} validation)"

    def build_request(self, messages: Sequence[OutgoingMessage]) -> APIRequest:
        """The pure builder's call with this attempt's Idempotency-Key (see PendingKeys)."""
        request = build_request(messages, self.config, self.token)
        digest = request.headers["Idempotency-Key"].removeprefix("digest-")
        key = PENDING_KEYS.key_for(digest)
        self._digests[key] = digest
        return dataclasses.replace(request, headers={**request.headers, "Idempotency-Key": key})

    def _post(self, request: APIRequest) -> list[SendResult]:
        """Post, then keep the key while the outcome is unknown and drop it once it is known."""
        key = request.headers["Idempotency-Key"]
        digest = self._digests.pop(key, key)
        try:
            results = super()._post(request)
        except TransientTransportError:  # the call may or may not have reached Resend
            PENDING_KEYS.keep(digest, key)
            raise
        except Exception:
            PENDING_KEYS.forget(digest)
            raise
        if any(r.status is Status.DEFERRED for r in results):
            PENDING_KEYS.keep(digest, key)
        else:
            PENDING_KEYS.forget(digest)
        return results

    def refused_429(self, request: APIRequest, response: APIResponse) -> Exception | None:
        """A used-up daily or monthly quota stops the run: retrying within minutes cannot help."""
        period = QUOTA_ERRORS.get(error_name(response))
        if period is None:
            return None
        wait = wait_from_headers(response.headers, self._clock(), self.reset_header, self.reset_kind)
        when = (f"Resend asks to wait {wait / 3600:.1f} h" if wait else
                "the daily quota frees up within 24 hours" if period == "daily" else
                "the monthly quota resets with your next billing month")
        return AccountRefusedError(
            f"Resend refused the call: the account's {period} email quota is used up "
            f"(HTTP 429 {error_name(response)}): {response.excerpt(200)}",
            f"{when}; run `digest send` again then (everyone not yet sent is still pending), "
            "or raise the quota with a bigger Resend plan")

    def read_results(self, request: APIRequest, response: APIResponse) -> list[SendResult]:
        """200 {data: [{id}], errors: [{index, message}]} → per message, in request order."""
        if response.status == 409 and error_name(response) == "concurrent_idempotent_requests":
            # The earlier attempt of this very call is still being processed: in progress, not a
            # failure. The retry reuses the key, so it gets that attempt's answer.
            return [SendResult(m.recipient_id, Status.DEFERRED, code="in_progress",
                               reason="Resend is still processing an earlier attempt of this call; "
                                      "asking again shortly", retry_after=1.0)
                    for m in request.messages]
        if response.status != 200:
            hint = ("Resend saw digest's Idempotency-Key with other content, which digest never sends: "
                    "check that nothing else uses keys starting with 'digest-'; nothing in this batch was sent"
                    if error_name(response) == "invalid_idempotent_request"
                    else "fix what the error names (sender domain, settings, message); "
                         "nothing in this batch was sent")
            raise self.permanent(request, response, hint)
        ids, failed = self._parse_batch(request, response)
        results = []
        for i, m in enumerate(request.messages):
            if i in failed:
                text = failed[i]
                results.append(SendResult(m.recipient_id, Status.FAILED, code="validation_error",
                                          reason=f"Resend: {text['message']}", suppress=suppressible(text)))
            else:
                item = ids[i]
                pid = item.get("id") if isinstance(item, dict) else None
                results.append(SendResult(m.recipient_id, Status.SENT, provider_id=pid, code="200"))
        return results

    def _parse_batch(self, request: APIRequest, response: APIResponse) -> tuple[dict[int, object], dict[int, dict]]:
        """({index: data item} for accepted messages, {index: error object} for refused ones)."""
        try:
            body = response.json()
        except ValueError:
            raise self.unreadable(request, response, "the body is not JSON")
        data = body.get("data") if isinstance(body, dict) else None
        errors = (body.get("errors") or []) if isinstance(body, dict) else []
        if not isinstance(data, list) or not isinstance(errors, list):
            raise self.unreadable(request, response, "it has no data array")
        failed: dict[int, dict] = {}
        for e in errors:
            if isinstance(e, dict) and isinstance(e.get("index"), int):
                failed[e["index"]] = {**e, "message": str(e.get("message", ""))}
        accepted = [i for i in range(len(request.messages)) if i not in failed]
        if len(data) != len(accepted):
            raise self.unreadable(request, response,
                                  f"it holds {len(data)} ids for {len(accepted)} accepted messages")
        return dict(zip(accepted, data)), failed
