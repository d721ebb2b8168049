"""Local stand-in for Resend's batch email API (see fake_providers for how the stand-ins are used)."""

from __future__ import annotations

import hashlib
import json
import uuid

from tests.helpers.fake_base import FakeProvider, Reply, bare, looks_like_address

# ------------------------------------------------------------------------------------------------
# Resend: POST /emails/batch, Bearer, ≤ 100 emails, Idempotency-Key, x-batch-validation.
# ------------------------------------------------------------------------------------------------

class FakeResend(FakeProvider):
    name = "resend"
    limit = 100

    def __init__(self, token: str = "re_test_token"):
        super().__init__(token)
        self.idempotency: dict[str, tuple[str, Reply]] = {}  # key → (payload hash, stored reply)
        self.replayed = 0

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

    def handle(self, call, headers, body):
        if call.method != "POST" or call.path != "/emails/batch":
            return Reply(404, {"statusCode": 404, "name": "not_found", "message": "The requested endpoint does not exist."})
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return Reply(401, {"statusCode": 401, "name": "missing_api_key",
                               "message": "Missing API key in the authorization header"})
        if auth != f"Bearer {self.token}":
            return Reply(403, {"statusCode": 403, "name": "invalid_api_key", "message": "API key is invalid"})
        try:
            items = json.loads(body)
        except ValueError:
            return Reply(400, {"statusCode": 400, "name": "validation_error", "message": "Invalid JSON."})
        call.payload = items
        if not isinstance(items, list):
            return Reply(422, {"statusCode": 422, "name": "validation_error", "message": "Expected an array."})
        call.recipients = [bare(str(t)) for i in items if isinstance(i, dict) for t in i.get("to", [])]
        key = headers.get("idempotency-key")
        digest = hashlib.sha256(body).hexdigest()
        if key is not None:
            if not 1 <= len(key) <= 256:
                return Reply(400, {"statusCode": 400, "name": "invalid_idempotency_key",
                                   "message": "The key must be between 1-256 chars."})
            with self.lock:
                stored = self.idempotency.get(key)
            if stored:
                if stored[0] != digest:
                    return Reply(409, {"statusCode": 409, "name": "invalid_idempotent_request",
                                       "message": "Same idempotency key used with a different request payload."})
                self.replayed += 1
                return stored[1]
        reply = self._process(items, headers.get("x-batch-validation", "strict"))
        if key is not None and reply.status == 200:
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
            addr = bare(str(t))
            if self.kind(addr) == "invalid" or not looks_like_address(addr) or '"' in str(t):
                return ("Invalid `to` field. The email address needs to follow the `email@example.com` "
                        "or `Name <email@example.com>` format.")
        if "headers" in item and not isinstance(item["headers"], dict):
            return "The `headers` field must be an object."
        return None

    def _process(self, items: list, mode: str) -> Reply:
        if len(items) > self.limit:
            return Reply(422, {"statusCode": 422, "name": "validation_error",
                               "message": f"Too many emails: the batch endpoint takes up to {self.limit}."})
        errors = [(i, e) for i, e in ((i, self._item_error(it)) for i, it in enumerate(items)) if e]
        if errors and mode != "permissive":
            return Reply(422, {"statusCode": 422, "name": "validation_error", "message": errors[0][1]})
        bad = {i for i, _ in errors}
        data = []
        for i, item in enumerate(items):
            if i in bad:
                continue
            for t in item["to"]:
                self.accept(bare(t))
            data.append({"id": str(uuid.uuid4())})
        body: dict = {"data": data}
        if mode == "permissive":
            body["errors"] = [{"index": i, "message": e} for i, e in errors]
        return Reply(200, body)
