"""Local stand-in for Mailgun's messages API (see fake_providers for how the stand-ins are used).

What it does as Mailgun does, with where Mailgun says so:

* POST /v3/<domain>/messages, a form, HTTP basic auth ``api:<key>``; a bad key is answered 403
  "Forbidden" (Mailgun docs, "API Response Codes": "403 — Auth error or access denied"); 400 with a
  JSON ``message`` for a bad request, e.g. "'to' parameter is not a valid address".
* Several ``to`` fields without ``recipient-variables`` make ONE message that every recipient sees
  (Mailgun docs, "Batch Sending"); the stand-in counts such calls in ``shared_to_calls``.
* Internationalised addresses are taken: "Mailgun's Messages API supports sending to addresses that
  use internationalized domain names", and non-ASCII local parts through SMTPUTF8 (Mailgun docs,
  "Internationalization"). django-anymail notes that Mailgun then writes header fields some mail
  apps show garbled (docs, Mailgun "Limitations and quirks").
* Suppressed addresses are accepted and dropped later (they reach you through webhooks).
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import time
from urllib.parse import parse_qsl

from tests.helpers.fake_base import Call, FakeProvider, Reply, bare, looks_like_address, mailboxes

# ------------------------------------------------------------------------------------------------
# Mailgun: POST /v3/<domain>/messages, basic auth api:<key>, form fields, ≤ 1000 `to`.
# ------------------------------------------------------------------------------------------------

class FakeMailgun(FakeProvider):
    name = "mailgun"
    limit = 1000

    def __init__(self, token: str = "test-token", domain: str = "mg.example.org"):
        super().__init__(token)
        self.domain = domain
        self.shared_to_calls: list[Call] = []  # calls where recipients would see each other

    def error_body(self, status):
        if status in (401, 403):
            return "Forbidden"
        return {"message": {429: "Too many requests", 500: "Internal Server Error"}.get(status, "error")}

    @staticmethod
    def parse_form(headers: dict, body: bytes) -> list[tuple[str, str]]:
        ctype = headers.get("content-type", "")
        if ctype.startswith("application/x-www-form-urlencoded"):
            return parse_qsl(body.decode(), keep_blank_values=True)
        if ctype.startswith("multipart/form-data"):
            msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                f"Content-Type: {ctype}\r\n\r\n".encode() + body)
            fields = []
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                fields.append((name, part.get_payload(decode=True).decode("utf-8")))
            return fields
        raise ValueError(f"unsupported content type {ctype!r}")

    def peek(self, headers, body):
        try:
            fields = self.parse_form(headers, body)
            return fields, [bare(v) for k, v in fields if k == "to"]
        except Exception:
            return None, []

    @staticmethod
    def _variables(form: dict) -> dict | None:
        """The recipient-variables object ({} when absent), or None when it is not a JSON object."""
        if "recipient-variables" not in form:
            return {}
        try:
            variables = json.loads(form["recipient-variables"][0])
        except ValueError:
            return None
        return variables if isinstance(variables, dict) else None

    def handle(self, call, headers, body):
        if call.method != "POST" or call.path != f"/v3/{self.domain}/messages":
            return Reply(404, {"message": "Domain not found"})
        expected = "Basic " + base64.b64encode(f"api:{self.token}".encode()).decode()
        if headers.get("authorization") != expected:
            return Reply(403, "Forbidden")
        try:
            fields = self.parse_form(headers, body)
        except ValueError as exc:
            return Reply(400, {"message": str(exc)})
        call.payload = fields
        form: dict[str, list[str]] = {}
        for k, v in fields:
            form.setdefault(k, []).append(v)
        tos = form.get("to", [])
        call.recipients = [addr for t in tos for _, addr in (mailboxes(t) or [("", bare(t))])]
        for required in ("from", "to"):
            if not form.get(required):
                return Reply(400, {"message": f"'{required}' parameter is missing"})
        if not (form.get("text") or form.get("html")):
            return Reply(400, {"message": "Need at least one of 'text', 'html' or 'template' parameters specified"})
        if len(tos) > self.limit:
            return Reply(400, {"message": "Too many recipients"})
        variables = self._variables(form)
        if variables is None:
            return Reply(400, {"message": "recipient-variables parameter is not a valid JSON"})
        if len(tos) > 1 and not variables:
            self.shared_to_calls.append(call)  # the real Mailgun would send ONE message to all of them
        for addr in call.recipients:
            if self.kind(addr) == "invalid" or not looks_like_address(addr):
                return Reply(400, {"message": "'to' parameter is not a valid address. please check documentation"})
        headers_out = {k[2:]: v for k, v in fields if k.startswith("h:")}
        for t in tos:  # suppressed addresses are accepted and dropped later by Mailgun
            self.deliver(t, form["from"][0], (form.get("subject") or [""])[0], headers_out,
                         (form.get("html") or [""])[0], (form.get("text") or [""])[0])
        return Reply(200, {"id": f"<{time.strftime('%Y%m%d%H%M%S')}.{self.next_id()}@{self.domain}>",
                           "message": "Queued. Thank you."})
