"""Local stand-in for Postmark's email API (see fake_providers for how the stand-ins are used).

What it does as Postmark does, with where Postmark says so:

* POST /email/batch: up to 500 messages, 50 MB per call, an answer per message with ErrorCode 0 on
  success (API reference "Send batch emails"; "Batch endpoint total payload size ... cannot exceed
  50 MB"; over the limit the call is answered HTTP 413, API overview "HTTP response codes").
* Per message (support article "What are the attachment and email size limits?"): TextBody and
  HtmlBody up to 5 MB each, the whole message up to 10 MB. NOT CONFIRMED: how Postmark answers an
  oversized message inside a batch; the stand-in answers that item ErrorCode 300.
* Addresses are checked with Postmark's own published rules (support article "What does Error Code
  '300' mean?"): mailbox ``[a-z0-9.!#$%&'`*+-/=^_{}|~]+``, domain ``((\\.)?[a-zA-Z0-9-])+`` — so a
  non-ASCII local part or an unconverted IDN domain is "Invalid 'To' address" (ErrorCode 300); a
  display name with punctuation must be quoted or the address cannot be parsed.
* The From address must be a verified sender signature or on a verified domain: otherwise
  ErrorCode 300 "Invalid 'From' address: '…' is not a verified sender signature." (support article
  "Troubleshooting 422 Unprocessable Entity errors").
* Message streams are per server and named by their ID (Message Streams API; support article "How
  to create and send through Message Streams": "If no Stream ID is provided when sending, Postmark
  will send through the default Transactional Stream"). NOT CONFIRMED from Postmark's published
  error table: the ErrorCode for an unknown stream at send time (the stand-in uses 1235) and the
  body of GET /message-streams/{id} for an unknown ID (the stand-in answers HTTP 404, which the
  API overview documents as "Entity doesn't exist", with ErrorCode 1226).
* On a broadcast stream whose unsubscribes Postmark manages (the default), Postmark appends its own
  unsubscribe link to the footer and sets its own List-Unsubscribe and List-Unsubscribe-Post
  headers, which cannot be edited (support articles "How to add an unsubscribe link" and "How to
  include a List-Unsubscribe header"); a reader who clicks it lands in the stream's suppressions
  (GET /message-streams/{id}/suppressions/dump, Suppressions API) and later sends to them get
  ErrorCode 406.
"""

from __future__ import annotations

import json
import re
import uuid
from urllib.parse import parse_qs, urlsplit

from tests.helpers.fake_base import FakeProvider, Reply, bare, mailboxes

MAX_CALL_BYTES = 50 * 1000 * 1000       # "50 MB"; the stand-in reads MB as 10^6 bytes (the smaller)
MAX_MESSAGE_BYTES = 10 * 1000 * 1000
MAX_BODY_BYTES = 5 * 1000 * 1000
_MAILBOX = re.compile(r"[a-z0-9.!#$%&'`*+\-/=^_{}|~]+\Z", re.I)
_DOMAIN = re.compile(r"((\.)?[a-zA-Z0-9\-])+\Z")
POSTMARK_UNSUBSCRIBE = "https://pm.unsubscribe.example/{id}"  # stands in for Postmark's own link


def postmark_accepts(addr: str) -> bool:
    """Whether an address passes Postmark's published mailbox and domain patterns."""
    local, at, domain = addr.rpartition("@")
    return bool(at) and bool(_MAILBOX.match(local)) and bool(_DOMAIN.match(domain)) and "." in domain


class FakePostmark(FakeProvider):
    name = "postmark"
    limit = 500

    def __init__(self, token: str = "test-token", *, streams: dict | None = None,
                 senders: tuple[str, ...] = ("example.org",)):
        super().__init__(token)
        # stream ID → (MessageStreamType, UnsubscribeHandlingType); each server has its own set.
        self.streams: dict[str, tuple[str, str]] = streams if streams is not None else {
            "outbound": ("Transactional", "None"), "inbound": ("Inbound", "None"),
            "broadcast": ("Broadcasts", "Postmark")}
        self.archived: set[str] = set()
        self.senders = {s.lower() for s in senders}  # verified sender signatures and domains
        self.suppressions: dict[str, list[dict]] = {}

    # -- scripting ----------------------------------------------------------------------------

    def unsubscribe(self, address: str, stream: str = "broadcast", reason: str = "ManualSuppression",
                    origin: str = "Recipient") -> None:
        """What Postmark does when a reader clicks its unsubscribe link: suppress them in the stream."""
        self.suppressions.setdefault(stream, []).append(
            {"EmailAddress": address.lower(), "SuppressionReason": reason, "Origin": origin,
             "CreatedAt": "2026-11-20T10:00:00-05:00"})

    def error_body(self, status):
        if status == 429:
            return {"ErrorCode": 429, "Message": "Rate limit exceeded."}
        if status == 401:
            return {"ErrorCode": 10, "Message": "Request does not contain a valid Server token."}
        if status == 422:
            return {"ErrorCode": 300, "Message": "Invalid email request."}
        return {"ErrorCode": 0, "Message": "Internal server error."} if status >= 500 else {}

    # -- requests -----------------------------------------------------------------------------

    def is_send(self, method, path):
        return path == "/email/batch"

    def peek(self, headers, body):
        try:
            items = json.loads(body)
            return items, [bare(i.get("To", "")) for i in items]
        except Exception:
            return None, []

    def handle(self, call, headers, body):
        if headers.get("x-postmark-server-token") != self.token:
            return Reply(401, self.error_body(401))
        if call.method == "GET":
            return self._management(call)
        if call.method != "POST" or call.path != "/email/batch":
            return Reply(404, {"ErrorCode": 404, "Message": "Not found."})
        if "application/json" not in headers.get("content-type", ""):
            return Reply(422, {"ErrorCode": 409, "Message": "JSON request required."})
        if len(body) > MAX_CALL_BYTES:
            return Reply(413, {"ErrorCode": 413, "Message": "Payload too large: the batch endpoint takes "
                                                            "up to 50 MB per call."})
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
        return Reply(200, [self._item(item) for item in items])

    # -- the Message Streams and Suppressions APIs ---------------------------------------------

    def _stream_json(self, sid: str) -> dict:
        kind, unsubscribes = self.streams[sid]
        return {"ID": sid, "ServerID": 1, "Name": sid.title(), "Description": None,
                "MessageStreamType": kind, "CreatedAt": "2026-01-01T00:00:00-05:00", "UpdatedAt": None,
                "ArchivedAt": "2026-06-01T00:00:00-04:00" if sid in self.archived else None,
                "SubscriptionManagementConfiguration": {"UnsubscribeHandlingType": unsubscribes}}

    def _management(self, call) -> Reply:
        parts = urlsplit(call.path)
        segments = [s for s in parts.path.split("/") if s]
        if segments == ["message-streams"]:
            query = parse_qs(parts.query)
            archived = query.get("IncludeArchivedStreams", ["false"])[0].lower() == "true"
            listed = [self._stream_json(s) for s in self.streams if archived or s not in self.archived]
            return Reply(200, {"MessageStreams": listed, "TotalCount": len(listed)})
        if len(segments) >= 2 and segments[0] == "message-streams" and segments[1] not in self.streams:
            return Reply(404, {"ErrorCode": 1226, "Message": "The message stream for the provided 'ID' was not found."})
        if len(segments) == 2 and segments[0] == "message-streams":
            return Reply(200, self._stream_json(segments[1]))
        if len(segments) == 4 and segments[0] == "message-streams" and segments[2:] == ["suppressions", "dump"]:
            return Reply(200, {"Suppressions": list(self.suppressions.get(segments[1], []))})
        return Reply(404, {"ErrorCode": 404, "Message": "Not found."})

    # -- one message of a batch ---------------------------------------------------------------

    def _refusal(self, item: dict) -> dict | None:
        """The ErrorCode answer for an item Postmark would not accept, or None."""
        missing = [f for f in ("From", "To", "Subject") if not item.get(f)]
        if missing or not (item.get("HtmlBody") or item.get("TextBody")):
            return {"ErrorCode": 300, "Message": f"Invalid email request: missing {missing or ['HtmlBody/TextBody']}."}
        headers = item.get("Headers", [])
        if not isinstance(headers, list) or not all(
                isinstance(x, dict) and set(x) == {"Name", "Value"} for x in headers):
            return {"ErrorCode": 300, "Message": "Invalid email request: Headers must be [{Name, Value}]."}
        body_sizes = [len(str(item.get(f) or "").encode()) for f in ("HtmlBody", "TextBody")]
        if max(body_sizes) > MAX_BODY_BYTES or len(json.dumps(item).encode()) > MAX_MESSAGE_BYTES:
            return {"ErrorCode": 300, "Message": "Invalid email request: the message exceeds Postmark's size limits."}
        sender = mailboxes(str(item["From"])) or []
        sender_addr = sender[0][1].lower() if len(sender) == 1 else ""
        if sender_addr not in self.senders and sender_addr.rpartition("@")[2] not in self.senders:
            return {"ErrorCode": 300, "Message": f"Invalid 'From' address: '{sender_addr or item['From']}' "
                                                 "is not a verified sender signature."}
        sid = item.get("MessageStream") or "outbound"
        if sid not in self.streams or sid in self.archived or self.streams[sid][0] == "Inbound":
            return {"ErrorCode": 1235, "Message": f"The message stream '{sid}' was not found or cannot send."}
        return None

    def _item(self, item: dict) -> dict:
        refusal = self._refusal(item)
        if refusal:
            return refusal
        to = str(item["To"])
        parsed = mailboxes(to)
        if not parsed or len(parsed) != 1:
            return {"ErrorCode": 300, "Message": f"Error parsing 'To': Illegal email address '{to}'."}
        addr = parsed[0][1]
        sid = item.get("MessageStream") or "outbound"
        kind = self.kind(addr)
        if kind == "invalid" or not postmark_accepts(addr):
            return {"ErrorCode": 300, "Message": f"Invalid 'To' address: '{addr}'."}
        suppressed = any(s["EmailAddress"] == addr.lower() for s in self.suppressions.get(sid, []))
        if kind == "inactive" or suppressed:
            return {"ErrorCode": 406, "Message":
                    "You tried to send to recipient(s) that have been marked as inactive. Found inactive "
                    f"addresses: {addr.lower()}. Inactive recipients are ones that have generated a hard bounce, "
                    "a spam complaint, or a manual suppression."}
        if kind == "transient":
            del self.rejections[addr.lower()]  # only the first post fails
            return {"ErrorCode": 100, "Message": "Maintenance."}
        message_id = str(uuid.uuid4())
        self._deliver(item, sid, message_id)
        return {"ErrorCode": 0, "Message": "OK", "MessageID": message_id,
                "SubmittedAt": "2026-11-20T10:00:00.0000000-05:00", "To": to}

    def _deliver(self, item: dict, sid: str, message_id: str) -> None:
        headers = {h["Name"]: h["Value"] for h in item.get("Headers", [])}
        html, text = str(item.get("HtmlBody") or ""), str(item.get("TextBody") or "")
        if self.streams[sid] == ("Broadcasts", "Postmark"):
            # Postmark's own link replaces digest's in the headers and is added to the footer.
            link = POSTMARK_UNSUBSCRIBE.format(id=message_id)
            headers.update({"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"})
            html += f'<p><a href="{link}">Unsubscribe</a></p>'
            text += f"\nUnsubscribe: {link}\n"
        self.deliver(str(item["To"]), str(item["From"]), str(item["Subject"]), headers, html, text)
