"""Resend: POST /emails/batch, up to 100 complete messages per call.

Each personalised message is its own item of the array. Two request headers matter:

* `Idempotency-Key` — derived from the ordered Message-IDs of the batch, so a call retried after a
  timeout (same messages) is answered from Resend's 24-hour idempotency store instead of sending
  again, while a different set of messages gets a different key.
* `x-batch-validation: permissive` — an invalid item no longer fails the whole batch: valid items
  are sent and the answer lists the invalid ones as {index, message} under `errors`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

from digest.config import setting
from digest.errors import ConfigError
from digest.outgoing import OutgoingMessage
from digest.transports.base import SendResult, Status
from digest.transports.http import (
    APIRequest,
    APIResponse,
    HTTPSettings,
    HTTPTransport,
    ascii_domain,
    display_address,
    message_headers,
    sender_address,
)
from digest.text import header_safe

API_URL = "https://api.resend.com"
MAX_BATCH = 100  # Resend's documented limit per /emails/batch call


@dataclass
class ResendSettings(HTTPSettings):
    """[resend] in digest.toml."""

    token_env: str = setting("RESEND_API_KEY", "Name of the environment variable holding the Resend API key.")
    base_url: str = setting(API_URL, "Where calls go: Resend's API; change it for a proxy or a local test server.")
    batch_validation: str = setting("permissive", "`permissive`: an invalid message fails alone; `strict`: one "
                                    "invalid message fails the whole call.")


def idempotency_key(messages: Sequence[OutgoingMessage]) -> str:
    """Stable for the same ordered messages, different for any other batch (≤ 256 chars)."""
    digest = hashlib.sha256("\n".join(m.message_id for m in messages).encode("utf-8")).hexdigest()
    return f"digest-batch/{digest}"


def build_request(messages: Sequence[OutgoingMessage], cfg: ResendSettings, token: str) -> APIRequest:
    """The /emails/batch call for up to 100 messages (pure: no network)."""
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
                 "Accept": "application/json", "Idempotency-Key": idempotency_key(messages),
                 "x-batch-validation": cfg.batch_validation},
        json=items)


def _error_name(response: APIResponse) -> str:
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

    @classmethod
    def check_config(cls, cfg: ResendSettings, where: str) -> None:
        """batch_validation is one of Resend's two modes."""
        if cfg.batch_validation not in ("permissive", "strict"):
            raise ConfigError(f"{where} batch_validation = {cfg.batch_validation!r}: "
                              "expected 'permissive' or 'strict'.")

    def describe(self) -> str:
        """Endpoint and validation mode."""
        return f"resend {self.config.base_url}/emails/batch ({self.config.batch_validation} validation)"

    def read_results(self, request: APIRequest, response: APIResponse) -> list[SendResult]:
        """200 {data: [{id}], errors: [{index, message}]} → per message, in request order."""
        if response.status == 409 and _error_name(response) == "concurrent_idempotent_requests":
            # The same batch is still being processed (an earlier attempt): ask again shortly.
            return [SendResult(m.recipient_id, Status.DEFERRED, code="409",
                               reason=f"Resend: {response.excerpt(200)}", retry_after=1.0)
                    for m in request.messages]
        if response.status != 200:
            hint = ("the same Idempotency-Key was used with different content: the issue changed "
                    "after part of it was sent; send the rest as a new issue or wait 24 h"
                    if _error_name(response) == "invalid_idempotent_request"
                    else "fix what the error names (sender domain, settings, message); "
                         "nothing in this batch was sent")
            raise self.permanent(request, response, hint)
        ids, failed = self._parse_batch(request, response)
        results = []
        for i, m in enumerate(request.messages):
            if i in failed:
                text = failed[i]
                results.append(SendResult(m.recipient_id, Status.FAILED, code="validation_error",
                                          reason=f"Resend: {text}", suppress="`to`" in text))
            else:
                item = ids[i]
                pid = item.get("id") if isinstance(item, dict) else None
                results.append(SendResult(m.recipient_id, Status.SENT, provider_id=pid, code="200"))
        return results

    def _parse_batch(self, request: APIRequest, response: APIResponse) -> tuple[dict[int, object], dict[int, str]]:
        """({index: data item} for accepted messages, {index: error message} for refused ones)."""
        try:
            body = response.json()
        except ValueError:
            raise self.unreadable(request, response, "the body is not JSON")
        data = body.get("data") if isinstance(body, dict) else None
        errors = (body.get("errors") or []) if isinstance(body, dict) else []
        if not isinstance(data, list) or not isinstance(errors, list):
            raise self.unreadable(request, response, "it has no data array")
        failed: dict[int, str] = {}
        for e in errors:
            if isinstance(e, dict) and isinstance(e.get("index"), int):
                failed[e["index"]] = str(e.get("message", ""))
        accepted = [i for i in range(len(request.messages)) if i not in failed]
        if len(data) != len(accepted):
            raise self.unreadable(request, response,
                                  f"it holds {len(data)} ids for {len(accepted)} accepted messages")
        return dict(zip(accepted, data)), failed
