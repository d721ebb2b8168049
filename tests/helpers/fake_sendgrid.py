"""Local stand-in for SendGrid's v3 Mail Send API (see fake_providers for how the stand-ins are used).

What it does as SendGrid does, with where that is said:

* POST /v3/mail/send, Bearer key, 202 Accepted with X-Message-Id; up to 1,000 personalizations and
  1,000 recipients per request; an address twice in one request fails the whole request (SendGrid
  v3 Mail Send reference, "Limitations").
* Display names go in the ``name`` field of an email object and SendGrid quotes them itself when it
  writes the header: a name that is already quoted reaches the reader with visible quotes. SendGrid
  fixed its old bug with commas in personalization names (django-anymail changelog v13.0: "Remove
  Anymail's workaround for an earlier SendGrid API bug with punctuation in address display names.
  SendGrid has fixed the bug"; the bug itself: sendgrid-python#291).
* A 400 naming ``personalizations.0.to.0.email`` is not always about the address: SendGrid has
  answered "Does not contain a valid address." for that field when the reader's *name* was the
  problem (Gig-o-Matic/GO3#549). Its errors carry ``message`` and ``field``.
* NOT CONFIRMED from SendGrid's documentation: whether the API takes a non-ASCII local part or an
  unconverted IDN domain. The stand-in refuses both as "Does not contain a valid address.".
* Suppressed addresses are accepted and dropped later (they reach you through the event webhook).
"""

from __future__ import annotations

import base64
import json
import uuid
from email.headerregistry import Address

from tests.helpers.fake_base import FakeProvider, Reply, bare, looks_like_address

# ------------------------------------------------------------------------------------------------
# SendGrid v3: POST /v3/mail/send, Bearer, ≤ 1000 personalizations, 202 + X-Message-Id.
# ------------------------------------------------------------------------------------------------

class FakeSendGrid(FakeProvider):
    name = "sendgrid"
    limit = 1000
    reserved = {"x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type",
                "content-transfer-encoding", "to", "from", "subject", "reply-to", "cc", "bcc"}

    def error_body(self, status):
        messages = {401: "The provided authorization grant is invalid, expired, or revoked",
                    429: "too many requests", 500: "internal error", 503: "service unavailable"}
        return {"errors": [{"field": None, "message": messages.get(status, "Bad Request"), "help": None}]}

    @staticmethod
    def _error(message, field_name=None):
        return Reply(400, {"errors": [{"message": message, "field": field_name, "help": None}]})

    @staticmethod
    def written(obj: dict) -> str:
        """The address as SendGrid writes it in the header: it quotes the name itself."""
        try:
            return str(Address(display_name=str(obj.get("name") or ""), addr_spec=str(obj.get("email", ""))))
        except ValueError:  # a name with CR/LF: no header can be written from it
            return f"{obj.get('name')} <{obj.get('email')}>"

    def _deliver(self, data: dict, p: dict) -> None:
        content = {c.get("type"): str(c.get("value", "")) for c in data.get("content", [])}
        for t in p["to"]:
            self.deliver(self.written(t), self.written(data.get("from") or {}),
                         str(p.get("subject") or data.get("subject")), data.get("headers") or {},
                         content.get("text/html", ""), content.get("text/plain", ""))

    def peek(self, headers, body):
        try:
            data = json.loads(body)
            return data, [bare(t["email"]) for p in data["personalizations"] for t in p.get("to", [])]
        except Exception:
            return None, []

    def _check_personalizations(self, ps: list) -> Reply | None:
        """SendGrid's refusal of the personalizations (a missing to, a duplicate, a bad address), or None."""
        seen = set()
        for pi, p in enumerate(ps):
            tos = p.get("to")
            if not isinstance(tos, list) or not tos:
                return self._error("The to parameter is required for all personalization objects.",
                                   f"personalizations.{pi}.to")
            for ti, t in enumerate(tos):
                addr = bare(str(t.get("email", "")))
                if addr in seen:
                    return self._error("Each email address in the personalization block should be unique "
                                       "between to, cc, and bcc. We found the first duplicate instance of "
                                       f"[{addr}] in the personalizations.{pi}.to field.", f"personalizations.{pi}")
                seen.add(addr)
                if self.kind(addr) == "invalid" or not looks_like_address(addr) or not addr.isascii():
                    return self._error("Does not contain a valid address.", f"personalizations.{pi}.to.{ti}.email")
            for k, v in (p.get("custom_args") or {}).items():
                if not isinstance(v, str):
                    return self._error("Bad Request")  # SendGrid's cryptic answer to non-string custom_args
        return None

    def handle(self, call, headers, body):
        if call.method != "POST" or call.path != "/v3/mail/send":
            return Reply(404, {"errors": [{"field": None, "message": "not found"}]})
        if headers.get("authorization") != f"Bearer {self.token}":
            return Reply(401, self.error_body(401))
        try:
            data = json.loads(body)
        except ValueError:
            return self._error("Bad Request")
        call.payload = data
        ps = data.get("personalizations")
        if not isinstance(ps, list) or not ps:
            return self._error("You must have at least one personalization.", "personalizations")
        call.recipients = [bare(str(t.get("email", ""))) for p in ps for t in p.get("to", [])]
        if len(ps) > self.limit:
            return self._error("The personalization block is limited to 1000 personalizations per API "
                               f"request. You have provided {len(ps)} personalizations.", "personalizations")
        if len(call.recipients) > self.limit:
            return self._error("There is a limit of 1000 total recipients (to + cc + bcc) per request.",
                               "personalizations")
        refused = self._check_personalizations(ps) or self._check_message(data, ps)
        if refused:
            return refused
        for p in ps:  # suppressed ("inactive") addresses are accepted and dropped later
            self._deliver(data, p)
        return Reply(202, b"", {"X-Message-Id": base64.urlsafe_b64encode(uuid.uuid4().bytes)[:22].decode()})

    def _check_message(self, data: dict, ps: list) -> Reply | None:
        """SendGrid's refusal of the sender, subject, content or headers, or None."""
        if not (data.get("from") or {}).get("email"):
            return self._error("The from object must be provided for every email send.", "from")
        if not data.get("subject") and not all(p.get("subject") for p in ps):
            return self._error("The subject is required.", "subject")
        content = data.get("content")
        if not isinstance(content, list) or not content:
            return self._error("Unless a valid template_id is provided, the content parameter is required.",
                               "content")
        types = [c.get("type") for c in content]
        if "text/html" in types and "text/plain" in types and types.index("text/plain") > types.index("text/html"):
            return self._error("If present, text/plain and text/html may only be provided once, "
                               "in that order: text/plain first.", "content")
        for k, v in (data.get("headers") or {}).items():
            if k.lower() in self.reserved:
                return self._error(f"The header {k} is reserved and cannot be set.", "headers")
            if not isinstance(v, str):
                return self._error("Invalid type. Expected: string, given: other.", f"headers.{k}")
        return None
