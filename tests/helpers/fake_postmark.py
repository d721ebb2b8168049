"""Local stand-in for Postmark's email API (see fake_providers for how the stand-ins are used)."""

from __future__ import annotations

import json
import uuid

from tests.helpers.fake_base import FakeProvider, Reply, bare, looks_like_address

# ------------------------------------------------------------------------------------------------
# Postmark: POST /email/batch, X-Postmark-Server-Token, ≤ 500 items, 200 with per-item ErrorCode.
# ------------------------------------------------------------------------------------------------

class FakePostmark(FakeProvider):
    name = "postmark"
    limit = 500
    streams = {"outbound", "broadcast"}

    def error_body(self, status):
        if status == 429:
            return {"ErrorCode": 429, "Message": "Rate limit exceeded."}
        if status == 401:
            return {"ErrorCode": 10, "Message": "Request does not contain a valid Server token."}
        if status == 422:
            return {"ErrorCode": 300, "Message": "Invalid email request."}
        return {"ErrorCode": 0, "Message": "Internal server error."} if status >= 500 else {}

    def peek(self, headers, body):
        try:
            items = json.loads(body)
            return items, [bare(i.get("To", "")) for i in items]
        except Exception:
            return None, []

    def handle(self, call, headers, body):
        if call.method != "POST" or call.path != "/email/batch":
            return Reply(404, {"ErrorCode": 404, "Message": "Not found."})
        if headers.get("x-postmark-server-token") != self.token:
            return Reply(401, self.error_body(401))
        if "application/json" not in headers.get("content-type", ""):
            return Reply(422, {"ErrorCode": 409, "Message": "JSON request required."})
        try:
            items = json.loads(body)
        except ValueError:
            return Reply(422, {"ErrorCode": 402, "Message": "Received invalid JSON input."})
        if not isinstance(items, list):
            return Reply(422, {"ErrorCode": 403, "Message": "Incompatible JSON input."})
        call.payload = items
        call.recipients = [bare(str(i.get("To", ""))) for i in items if isinstance(i, dict)]
        if len(items) > self.limit:
            return Reply(422, {"ErrorCode": 410, "Message":
                               f"Too many batch messages: you may send up to {self.limit} messages per call."})
        answer = []
        for item in items:
            answer.append(self._item(item))
        return Reply(200, answer)

    def _item(self, item: dict) -> dict:
        to = str(item.get("To", ""))
        addr = bare(to)
        missing = [f for f in ("From", "To", "Subject") if not item.get(f)]
        if missing or not (item.get("HtmlBody") or item.get("TextBody")):
            return {"ErrorCode": 300, "Message": f"Invalid email request: missing {missing or ['HtmlBody/TextBody']}."}
        headers = item.get("Headers", [])
        if not isinstance(headers, list) or not all(
                isinstance(x, dict) and set(x) == {"Name", "Value"} for x in headers):
            return {"ErrorCode": 300, "Message": "Invalid email request: Headers must be [{Name, Value}]."}
        if item.get("MessageStream", "outbound") not in self.streams:
            return {"ErrorCode": 1235, "Message": f"The message stream '{item.get('MessageStream')}' was not found."}
        kind = self.kind(addr)
        if kind == "invalid" or not looks_like_address(addr):
            return {"ErrorCode": 300, "Message": f"Invalid 'To' address: '{addr}'."}
        if kind == "inactive":
            return {"ErrorCode": 406, "Message":
                    "You tried to send to recipient(s) that have been marked as inactive. Found inactive "
                    f"addresses: {addr}. Inactive recipients are ones that have generated a hard bounce, "
                    "a spam complaint, or a manual suppression."}
        if kind == "transient":
            del self.rejections[addr]  # only the first post fails
            return {"ErrorCode": 100, "Message": "Maintenance."}
        self.accept(addr)
        return {"ErrorCode": 0, "Message": "OK", "MessageID": str(uuid.uuid4()),
                "SubmittedAt": "2026-11-20T10:00:00.0000000-05:00", "To": to}
