"""SendGrid v3: POST /v3/mail/send, one fully personalised message per call.

SendGrid's batch form (up to 1,000 personalizations in one call) shares ONE body among all
personalizations; per-recipient content is only possible through `substitutions` tags in that
body. digest hands transports finished per-recipient html/text (the unsubscribe link differs per
recipient), not a template with tags, so the only correct mapping is one call per message, with
the connection kept open across calls. That also makes SendGrid's "duplicate address across
personalizations → 400 for the whole request" impossible by construction.

202 Accepted with an empty body and the message id in the X-Message-Id header means accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from digest.outgoing import OutgoingMessage
from digest.sections import setting
from digest.text import header_safe
from digest.transports.base import SendResult, Status
from digest.transports.http import (
    APIRequest,
    APIResponse,
    HTTPSettings,
    HTTPTransport,
    ascii_domain,
    message_headers,
    split_address,
)

API_URL = "https://api.sendgrid.com"  # EU-pinned accounts: https://api.eu.sendgrid.com
PERSONALIZATIONS_LIMIT = 1000  # documented per-request limit (not reached: one per call)

# Headers SendGrid sets itself and refuses or overrides in `headers` (we send them as fields).
_FIELD_HEADERS = {"from", "to", "subject", "reply-to", "cc", "bcc", "content-type",
                  "content-transfer-encoding", "dkim-signature", "received", "x-sg-id", "x-sg-eid"}


@dataclass
class SendGridSettings(HTTPSettings):
    """[sendgrid] in digest.toml."""

    token_env: str = setting("SENDGRID_API_KEY", "Name of the environment variable holding the SendGrid API key.")
    base_url: str = setting(API_URL, "Where calls go: SendGrid's API; `https://api.eu.sendgrid.com` for EU-pinned "
                            "accounts, or a proxy or a local test server.")


def _email_object(name: str, addr: str) -> dict:
    """{"email", "name"} with the domain in ASCII and the name as it is: SendGrid quotes names itself
    (it fixed the personalization bug, sendgrid-python#291; django-anymail removed its workaround in
    v13.0), so a name quoted here would reach the reader with visible quotes."""
    obj = {"email": ascii_domain(addr)}
    name = header_safe(name)
    if name:
        obj["name"] = name
    return obj


def build_request(messages: Sequence[OutgoingMessage], cfg: SendGridSettings, token: str) -> APIRequest:
    """The /v3/mail/send call for exactly one message (pure: no network)."""
    if len(messages) != 1:
        raise ValueError(f"SendGrid calls carry one personalised message each, got {len(messages)}")
    m = messages[0]
    from_name, from_email = split_address(m.from_addr)
    content = []
    if m.text:
        content.append({"type": "text/plain", "value": m.text})  # SendGrid: text/plain first
    if m.html:
        content.append({"type": "text/html", "value": m.html})
    body: dict = {
        "personalizations": [{
            "to": [_email_object(m.to_name, m.to_email)],
            # Echoed in SendGrid's event webhook: lets bounces be matched back to the ledger.
            "custom_args": {"digest_recipient_id": str(m.recipient_id),
                            "digest_message_id": m.message_id},
        }],
        "from": _email_object(from_name, from_email),
        "subject": header_safe(m.subject),
        "content": content,
    }
    if m.reply_to:
        body["reply_to"] = _email_object(*split_address(m.reply_to))
    headers = {k: str(v) for k, v in message_headers(m) if k.lower() not in _FIELD_HEADERS}
    if headers:
        body["headers"] = headers
    return APIRequest(
        method="POST", url=f"{cfg.base_url}/v3/mail/send", messages=(m,),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                 "Accept": "application/json"},
        json=body)


_INVALID = re.compile(r"\b(valid|invalid)\b", re.I)


def about_reader(error: dict) -> str | None:
    """Whether a 400 error is about the reader's address ("address"), their name ("name") or
    neither (None: the request itself, digest's fault, the run stops).

    The field alone does not tell: SendGrid has answered "Does not contain a valid address." on
    personalizations.0.to.0.email when the name was at fault (Gig-o-Matic/GO3#549), and errors on
    personalizations.0.to itself are about the list digest built. So the address counts only
    when the field is the email itself and the message says it is not valid.
    """
    field = str(error.get("field") or "")
    message = str(error.get("message") or "")
    if re.fullmatch(r"personalizations\.0\.to\.\d+\.email", field) and _INVALID.search(message):
        return "address"
    if re.fullmatch(r"personalizations\.0\.to\.\d+\.name", field):
        return "name"
    return None


def _errors(response: APIResponse) -> list[dict]:
    try:
        data = response.json()
    except ValueError:
        return []
    errors = data.get("errors") if isinstance(data, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


class SendGridTransport(HTTPTransport):
    """Send through SendGrid's v3 Mail Send API, one message per call on a kept-open connection."""

    name = "sendgrid"
    label = "SendGrid"
    max_batch = 1
    settings_class = SendGridSettings
    request_builder = staticmethod(build_request)
    reset_header = "X-RateLimit-Reset"  # a Unix time
    reset_kind = "epoch"

    def describe(self) -> str:
        """Endpoint."""
        return f"sendgrid {self.config.base_url}/v3/mail/send (one message per call)"

    def read_results(self, request: APIRequest, response: APIResponse) -> list[SendResult]:
        """202 → accepted (id in X-Message-Id); 400 naming the recipient → that recipient failed."""
        (m,) = request.messages
        if response.status in (200, 202):
            return [SendResult(m.recipient_id, Status.SENT,
                               provider_id=response.headers.get("X-Message-Id"), code=str(response.status))]
        if response.status == 400:
            errors = _errors(response)
            kinds = {about_reader(e) for e in errors}
            if errors and kinds <= {"address", "name"}:
                reason = "; ".join(str(e.get("message", "")) for e in errors)
                # Only a refused address is suppressed; a refused name is not the address's fault
                # and may go out through another transport.
                return [SendResult(m.recipient_id, Status.FAILED, code="400", reason=f"SendGrid: {reason}",
                                   suppress=kinds == {"address"}, retryable=kinds != {"address"})]
        raise self.permanent(request, response,
                             "fix what the error names (sender identity, settings, message); "
                             "this message was not sent")
