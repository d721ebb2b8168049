"""Mailgun: POST /v3/<domain>/messages (multipart form, HTTP basic auth api:<key>).

Mailgun's batch form (up to 1,000 `to` fields in one call) shares ONE body and personalises it only
through %recipient.var% placeholders filled from `recipient-variables`. digest hands transports
finished per-recipient html/text, so each call carries exactly one message, with the connection
kept open. Every call still carries `recipient-variables`: with it Mailgun sends each `to` its own
copy, without it every recipient would see the whole To list. `check_private_to` refuses to build
a call that could expose addresses, whatever the batch size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

from digest.errors import ConfigError, PermanentTransportError
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
    display_address,
    message_headers,
    sender_address,
)

REGION_URLS = {"us": "https://api.mailgun.net", "eu": "https://api.eu.mailgun.net"}
TO_LIMIT = 1000  # documented recipients per call in batch form (not reached: one per call)


@dataclass
class MailgunSettings(HTTPSettings):
    """[mailgun] in digest.toml."""

    token_env: str = setting("MAILGUN_API_KEY", "Name of the environment variable holding the Mailgun API key.")
    domain: str = setting("", "Required: the sending domain registered at Mailgun, e.g. `mg.example.org`.")
    region: str = setting("us", "`us` or `eu`: picks api.mailgun.net or api.eu.mailgun.net unless base_url is set.")
    base_url: str = setting("", "Where calls go (default: the region's host); set it for a proxy or a local test "
                            "server.")


def check_private_to(fields: Sequence[tuple[str, object]]) -> None:
    """Refuse a form with several `to` fields unless recipient-variables names every one of them.

    Without recipient-variables Mailgun sends ONE message addressed to all `to` recipients. Such a
    form is a bug in digest, never the reader's fault: it is refused as a DigestError (the run
    stops with a message, not a traceback) before anything is posted.
    """
    tos = [str(v) for k, v in fields if k == "to"]
    if len(tos) <= 1:
        return
    hint = "this is a bug in digest, please report it; nothing was sent"
    raw = next((v for k, v in fields if k == "recipient-variables"), None)
    try:
        variables = json.loads(str(raw)) if raw is not None else {}
    except ValueError:
        variables = None
    if not isinstance(variables, dict):
        raise PermanentTransportError(
            f"Mailgun call with {len(tos)} 'to' fields: its recipient-variables is not a JSON object, so "
            "every recipient would see the whole To list", hint)
    missing = [t for t in tos if _bare(t) not in variables]
    if missing:
        raise PermanentTransportError(
            f"Mailgun call with {len(tos)} 'to' fields lacks recipient-variables for {missing[:3]}: "
            "every recipient would see the whole To list", hint)


def _bare(addr: str) -> str:
    return addr[addr.rfind("<") + 1:addr.rfind(">")] if addr.endswith(">") else addr


def build_request(messages: Sequence[OutgoingMessage], cfg: MailgunSettings, token: str) -> APIRequest:
    """The /v3/<domain>/messages call for exactly one message (pure: no network)."""
    if len(messages) != 1:
        raise ValueError(f"Mailgun calls carry one personalised message each, got {len(messages)}")
    m = messages[0]
    to = ascii_domain(m.to_email)
    fields: list[tuple[str, str]] = [
        ("from", sender_address(m.from_addr)),
        ("to", display_address(m.to_name, to)),
        ("subject", header_safe(m.subject)),
        ("text", m.text),
        ("html", m.html),
        ("recipient-variables", json.dumps({to: {"digest_recipient_id": m.recipient_id}})),
        ("v:digest_recipient_id", str(m.recipient_id)),  # echoed in Mailgun's event webhooks
    ]
    if m.reply_to:
        fields.append(("h:Reply-To", sender_address(m.reply_to)))
    fields.extend((f"h:{k}", v) for k, v in message_headers(m))
    check_private_to(fields)
    return APIRequest(
        method="POST", url=f"{cfg.base_url}/v3/{cfg.domain}/messages", messages=(m,),
        headers={"Accept": "application/json"},
        files=[(k, (None, v)) for k, v in fields],  # (None, value): a plain multipart form field
        auth=("api", token))


class MailgunTransport(HTTPTransport):
    """Send through Mailgun's messages API, one message per call on a kept-open connection."""

    name = "mailgun"
    label = "Mailgun"
    max_batch = 1
    accepts_eai = True  # Mailgun docs, "Internationalization": SMTPUTF8 addresses in the messages API
    settings_class = MailgunSettings
    request_builder = staticmethod(build_request)
    reset_header = "X-RateLimit-Reset"
    reset_kind = "epoch"

    @classmethod
    def prepare_section(cls, section: dict, where: str) -> dict:
        """region picks the API host unless base_url is given."""
        region = section.get("region", "us")
        if not isinstance(region, str) or region not in REGION_URLS:
            raise ConfigError(f"{where} region = {region!r}: expected one of {', '.join(REGION_URLS)}.")
        if not section.get("base_url"):
            section = {**section, "base_url": REGION_URLS[region]}
        return section

    @classmethod
    def check_config(cls, cfg: MailgunSettings, where: str) -> None:
        """domain is required: it is part of the endpoint."""
        if not cfg.domain:
            raise ConfigError(f"{where}: domain is required (your sending domain at Mailgun).",
                              'add domain = "mg.example.org" under [mailgun]')

    def describe(self) -> str:
        """Endpoint."""
        return f"mailgun {self.config.base_url}/v3/{self.config.domain}/messages (one message per call)"

    def read_results(self, request: APIRequest, response: APIResponse) -> list[SendResult]:
        """200 {id, message} → accepted; 400 about the `to` address → that recipient failed."""
        (m,) = request.messages
        if response.status == 200:
            try:
                data = response.json()
            except ValueError:
                raise self.unreadable(request, response, "the body is not JSON")
            if not isinstance(data, dict) or not data.get("id"):
                raise self.unreadable(request, response, "it holds no message id")
            return [SendResult(m.recipient_id, Status.SENT, provider_id=str(data["id"]), code="200",
                               reason=str(data.get("message", "")))]
        if response.status == 400:
            try:
                text = str(response.json().get("message", ""))
            except (ValueError, AttributeError):
                text = response.text
            if "'to'" in text or "to parameter" in text.lower():
                return [SendResult(m.recipient_id, Status.FAILED, code="400",
                                   reason=f"Mailgun: {text}", suppress=True)]
        raise self.permanent(request, response,
                             "fix what the error names ([mailgun] domain, sender, message); "
                             "this message was not sent")
