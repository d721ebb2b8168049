"""Local stand-in for Resend's batch email API (see fake_providers for how the stand-ins are used).

What it does as Resend does, with where Resend says so:

* POST /emails/batch, Bearer key, up to 100 emails; ``x-batch-validation: strict`` (the default:
  one invalid email fails the call with 422) or ``permissive`` (valid emails are sent, the invalid
  ones come back as ``errors: [{index, message}]`` — only an index and a message; Resend docs,
  "Batch validation modes").
* ``Idempotency-Key`` (Resend docs, "Idempotency keys"; API reference, "Errors"): the same key with
  the same payload within 24 hours is answered with the stored response and nothing is sent again;
  the same key with another payload is 409 ``invalid_idempotent_request``; the same key while the
  first request is still being processed is 409 ``concurrent_idempotent_requests``.
* Quotas (API reference, "Errors"; "Usage limits"): past the account's daily or monthly email quota
  the call is answered 429 ``daily_quota_exceeded`` / ``monthly_quota_exceeded``. NOT CONFIRMED:
  the wording of those messages and which headers (if any) say when the quota resets.
* Names: ``Name <address>`` and quoted names (``"Doe, Jane" <address>``) are taken; Resend fixed its
  old bug with punctuation in names (django-anymail changelog v13.0: "Remove Anymail's workaround
  for an earlier Resend API bug with punctuation in address display names. Resend has fixed the
  bug").
* Non-ASCII local parts are refused (django-anymail docs, Resend "Limitations and quirks": "Resend
  does not support sending from or to Unicode mailboxes ... Trying to use one will cause an API
  error"). NOT CONFIRMED: what Resend does with an unconverted IDN domain; the stand-in refuses it.
* Suppressed addresses are accepted and dropped later (they reach you through webhooks).
"""

from __future__ import annotations

import hashlib
import json
import uuid

from tests.helpers.fake_base import FakeProvider, Reply, bare, looks_like_address, mailboxes

INVALID_TO = ("Invalid `to` field. The email address needs to follow the `email@example.com` or "
              "`Name <email@example.com>` format.")


def _error(status: int, name: str, message: str) -> Reply:
    return Reply(status, {"statusCode": status, "name": name, "message": message})


class FakeResend(FakeProvider):
    name = "resend"
    limit = 100

    def __init__(self, token: str = "re_test_token", *, daily_quota: int | None = None,
                 monthly_quota: int | None = None):
        super().__init__(token)
        self.idempotency: dict[str, tuple[str, Reply]] = {}  # key → (payload hash, stored reply)
        self.in_flight: set[str] = set()                     # keys of requests being processed
        self.replayed = 0
        self.daily_quota, self.monthly_quota = daily_quota, monthly_quota
        self.sent = 0                                         # emails counted against the quotas

    def error_body(self, status):
        names = {401: "missing_api_key", 403: "invalid_api_key", 429: "rate_limit_exceeded",
                 500: "application_error", 422: "validation_error"}
        return {"statusCode": status, "name": names.get(status, "application_error"),
                "message": f"error {status}"}

    def peek(self, headers, body):
        try:
            items = json.loads(body)
            return items, [bare(t) for i in items for t in i.get("to", [])]
        except Exception:
            return None, []

    def done(self, call):
        with self.lock:
            self.in_flight.discard(call.headers.get("idempotency-key", ""))

    def handle(self, call, headers, body):
        if call.method != "POST" or call.path != "/emails/batch":
            return _error(404, "not_found", "The requested endpoint does not exist.")
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return _error(401, "missing_api_key", "Missing API key in the authorization header")
        if auth != f"Bearer {self.token}":
            return _error(403, "invalid_api_key", "API key is invalid")
        try:
            items = json.loads(body)
        except ValueError:
            return _error(400, "validation_error", "Invalid JSON.")
        call.payload = items
        if not isinstance(items, list):
            return _error(422, "validation_error", "Expected an array.")
        call.recipients = [bare(str(t)) for i in items if isinstance(i, dict) for t in i.get("to", [])]
        key = headers.get("idempotency-key")
        if key is None:
            return self._process(items, headers.get("x-batch-validation", "strict"))
        return self._idempotent(key, hashlib.sha256(body).hexdigest(), items, headers)

    def _idempotent(self, key: str, digest: str, items: list, headers: dict) -> Reply:
        if not 1 <= len(key) <= 256:
            return _error(400, "invalid_idempotency_key", "The key must be between 1-256 chars.")
        with self.lock:
            stored = self.idempotency.get(key)
            concurrent = key in self.in_flight
            self.in_flight.add(key)
        if concurrent:
            return _error(409, "concurrent_idempotent_requests",
                          "Same idempotency key used while original request is still in progress.")
        if stored:
            if stored[0] != digest:
                return _error(409, "invalid_idempotent_request",
                              "Same idempotency key used with a different request payload.")
            self.replayed += 1
            return stored[1]
        reply = self._process(items, headers.get("x-batch-validation", "strict"))
        if reply.status == 200:
            with self.lock:
                self.idempotency[key] = (digest, reply)
        return reply

    def _item_error(self, item) -> str | None:
        if not isinstance(item, dict):
            return "Each email must be an object."
        for f in ("from", "to", "subject"):
            if not item.get(f):
                return f"The `{f}` field is missing."
        if not (item.get("html") or item.get("text")):
            return "Missing `html` or `text` field."
        to = item["to"] if isinstance(item["to"], list) else [item["to"]]
        if len(to) > 50:
            return "Too many recipients in `to`: maximum 50."
        for t in to:
            parsed = mailboxes(str(t))
            addr = parsed[0][1] if parsed and len(parsed) == 1 else ""
            if self.kind(addr) == "invalid" or not looks_like_address(addr) or not addr.isascii():
                return INVALID_TO
        if "headers" in item and not isinstance(item["headers"], dict):
            return "The `headers` field must be an object."
        return None

    def _over_quota(self, count: int) -> Reply | None:
        for quota, name, period in ((self.daily_quota, "daily_quota_exceeded", "daily"),
                                    (self.monthly_quota, "monthly_quota_exceeded", "monthly")):
            if quota is not None and self.sent + count > quota:
                return _error(429, name, f"You have reached your {period} email sending quota.")
        return None

    def _process(self, items: list, mode: str) -> Reply:
        if len(items) > self.limit:
            return _error(422, "validation_error", f"Too many emails: the batch endpoint takes up to {self.limit}.")
        errors = [(i, e) for i, e in ((i, self._item_error(it)) for i, it in enumerate(items)) if e]
        if errors and mode != "permissive":
            return _error(422, "validation_error", errors[0][1])
        bad = {i for i, _ in errors}
        good = [item for i, item in enumerate(items) if i not in bad]
        over = self._over_quota(sum(len(item["to"]) for item in good))
        if over:
            return over
        data = []
        for item in good:
            self.sent += len(item["to"])
            for t in item["to"]:
                self.deliver(str(t), str(item["from"]), str(item["subject"]), item.get("headers") or {},
                             str(item.get("html") or ""), str(item.get("text") or ""))
            data.append({"id": str(uuid.uuid4())})
        body: dict = {"data": data}
        if mode == "permissive":
            body["errors"] = [{"index": i, "message": e} for i, e in errors]
        return Reply(200, body)
