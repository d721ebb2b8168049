"""Each provider's webhook payload → FeedbackEvents (pure: a parsed payload in, events out).

Only what digest acts on is kept (bounces, deferrals, complaints, unsubscribes, deliveries); opens,
clicks and the rest are dropped. Payload shapes are the providers' documented ones (the tests keep
the providers' own examples).
"""

from __future__ import annotations

import re
from typing import Any

from digest.feedback.events import (
    BOUNCED,
    COMPLAINED,
    DEFERRED,
    DELIVERED,
    UNSUBSCRIBED,
    FeedbackEvent,
    bare_id,
    event_time,
    payload_id,
)

# Postmark bounce Type → (event, permanent). Types that are not a delivery problem (auto-replies,
# address changes, subscribes) are left out.
_POSTMARK_TYPES = {
    "HardBounce": (BOUNCED, True), "BadEmailAddress": (BOUNCED, True), "ManuallyDeactivated": (BOUNCED, True),
    "Blocked": (BOUNCED, False), "SoftBounce": (BOUNCED, False), "VirusNotification": (BOUNCED, False),
    "DMARCPolicy": (BOUNCED, False), "Transient": (DEFERRED, False), "DnsError": (DEFERRED, False),
    "SpamNotification": (COMPLAINED, False), "SpamComplaint": (COMPLAINED, False),
    "Unsubscribe": (UNSUBSCRIBED, False), "ManualSuppression": (UNSUBSCRIBED, False),
}


def _recipient_id(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def postmark_events(payload: dict) -> list[FeedbackEvent]:
    """A Postmark webhook (one record: Bounce, SpamComplaint, Delivery or SubscriptionChange)."""
    record = payload.get("RecordType")
    if record == "Delivery":
        kind = (DELIVERED, False)
    elif record in ("Bounce", "SpamComplaint"):
        kind = _POSTMARK_TYPES.get(str(payload.get("Type")))
    elif record == "SubscriptionChange" and payload.get("SuppressSending"):
        # Postmark suppressed the address: why is in SuppressionReason. (A reactivation is not
        # acted on: taking an address off digest's list stays a person's decision.)
        kind = _POSTMARK_TYPES.get(str(payload.get("SuppressionReason")), (UNSUBSCRIBED, False))
    else:
        kind = None
    email = str(payload.get("Email") or payload.get("Recipient") or "").strip()
    if kind is None or not email:
        return []
    metadata = payload.get("Metadata") if isinstance(payload.get("Metadata"), dict) else {}
    when = payload.get("BouncedAt") or payload.get("DeliveredAt") or payload.get("ChangedAt")
    reason = " — ".join(str(payload[k]) for k in ("Description", "Details") if payload.get(k))
    event_id = str(payload["ID"]) if payload.get("ID") is not None else payload_id(payload)
    return [FeedbackEvent("postmark", kind[0], email, event_time(when), f"{record}-{event_id}", permanent=kind[1],
                          provider_id=bare_id(payload.get("MessageID")),
                          recipient_id=_recipient_id(metadata.get("digest_recipient_id")),
                          reason=reason or str(payload.get("SuppressionReason") or ""))]


def _sendgrid_kind(item: dict) -> tuple[str, bool] | None:
    event = item.get("event")
    if event == "bounce":
        return (BOUNCED, item.get("type") != "blocked")  # "blocked": refused for now, not for good
    if event == "dropped":
        reason = str(item.get("reason", "")).lower()
        if "unsubscribed" in reason:
            return (UNSUBSCRIBED, False)
        if "spam" in reason:
            return (COMPLAINED, False)
        if "bounced" in reason or "invalid" in reason:
            return (BOUNCED, True)
        return None
    return {"deferred": (DEFERRED, False), "delivered": (DELIVERED, False), "spamreport": (COMPLAINED, False),
            "unsubscribe": (UNSUBSCRIBED, False), "group_unsubscribe": (UNSUBSCRIBED, False)}.get(str(event))


def sendgrid_message_id(sg_message_id: Any) -> str | None:
    """The X-Message-Id the send recorded, from an event's sg_message_id (`<id>.filter…` / `<id>.recvd…`)."""
    text = bare_id(sg_message_id)
    return re.split(r"\.(?:filter|recvd)", text, maxsplit=1)[0] if text else None


def sendgrid_events(payload: list) -> list[FeedbackEvent]:
    """A SendGrid event webhook post: a JSON array of events (custom_args are top-level keys)."""
    out = []
    for item in payload if isinstance(payload, list) else []:
        kind = _sendgrid_kind(item) if isinstance(item, dict) else None
        if kind is None or not item.get("email"):
            continue
        reason = " ".join(str(item[k]) for k in ("status", "reason", "response") if item.get(k))
        out.append(FeedbackEvent("sendgrid", kind[0], str(item["email"]), event_time(item.get("timestamp")),
                                 str(item.get("sg_event_id") or payload_id(item)), permanent=kind[1],
                                 provider_id=sendgrid_message_id(item.get("sg_message_id")),
                                 message_id=bare_id(item.get("digest_message_id")),
                                 recipient_id=_recipient_id(item.get("digest_recipient_id")), reason=reason))
    return out


def mailgun_events(payload: dict) -> list[FeedbackEvent]:
    """A Mailgun webhook post: {"signature": …, "event-data": {…}}."""
    data = payload.get("event-data") if isinstance(payload.get("event-data"), dict) else {}
    event, severity = data.get("event"), data.get("severity")
    status = data.get("delivery-status") if isinstance(data.get("delivery-status"), dict) else {}
    if event == "failed" and severity == "permanent":
        # "old": Mailgun gave up retrying a temporary failure — a soft bounce, not a dead address.
        kind = (BOUNCED, not (data.get("reason") == "old" or str(status.get("code", "")).startswith("4")))
    else:
        kind = {"failed": (DEFERRED, False), "delivered": (DELIVERED, False), "complained": (COMPLAINED, False),
                "unsubscribed": (UNSUBSCRIBED, False)}.get(str(event))
    if kind is None or not data.get("recipient"):
        return []
    message = data.get("message") if isinstance(data.get("message"), dict) else {}
    headers = message.get("headers") if isinstance(message.get("headers"), dict) else {}
    variables = data.get("user-variables") if isinstance(data.get("user-variables"), dict) else {}
    reason = " ".join(str(x) for x in (status.get("code"), status.get("description") or status.get("message"),
                                       data.get("reason")) if x)
    mid = bare_id(headers.get("message-id"))
    return [FeedbackEvent("mailgun", kind[0], str(data["recipient"]), event_time(data.get("timestamp")),
                          str(data.get("id") or payload_id(data)), permanent=kind[1], provider_id=mid, message_id=mid,
                          recipient_id=_recipient_id(variables.get("digest_recipient_id")), reason=reason)]


def resend_events(payload: dict, event_id: str) -> list[FeedbackEvent]:
    """A Resend webhook (Svix): {"type": "email.bounced", "created_at": …, "data": {…}}; `event_id` is svix-id."""
    kind_name, data = payload.get("type"), payload.get("data") if isinstance(payload.get("data"), dict) else {}
    when = event_time(payload.get("created_at"))
    if kind_name == "contact.updated":
        if data.get("unsubscribed") and data.get("email"):
            return [FeedbackEvent("resend", UNSUBSCRIBED, str(data["email"]), when, event_id,
                                  reason="unsubscribed in Resend")]
        return []
    bounce = data.get("bounce") if isinstance(data.get("bounce"), dict) else {}
    kind = {"email.bounced": (BOUNCED, bounce.get("type") == "Permanent"), "email.complained": (COMPLAINED, False),
            "email.delivered": (DELIVERED, False), "email.delivery_delayed": (DEFERRED, False)}.get(str(kind_name))
    if kind is None:
        return []
    to = data.get("to") if isinstance(data.get("to"), list) else [data.get("to")]
    reason = " ".join(str(bounce[k]) for k in ("type", "subType", "message") if bounce.get(k))
    return [FeedbackEvent("resend", kind[0], str(address), when, event_id, permanent=kind[1],
                          provider_id=bare_id(data.get("email_id")), reason=reason)
            for address in to if address]


def _ses_bounce(part: dict) -> list[tuple]:
    return [(r.get("emailAddress"), " ".join(str(r[k]) for k in ("status", "diagnosticCode") if r.get(k))
             or f"{part.get('bounceType')} {part.get('bounceSubType')}") for r in part.get("bouncedRecipients", [])]


def _ses_complaint(part: dict) -> list[tuple]:
    return [(r.get("emailAddress"), str(part.get("complaintFeedbackType") or "spam complaint"))
            for r in part.get("complainedRecipients", [])]


def _ses_delivery(part: dict) -> list[tuple]:
    return [(r, str(part.get("smtpResponse", ""))) for r in part.get("recipients", [])]


def _ses_delay(part: dict) -> list[tuple]:
    return [(r.get("emailAddress"), str(r.get("diagnosticCode") or part.get("delayType", "")))
            for r in part.get("delayedRecipients", [])]


# SES notification type → (the key of its details, our event, who it names with what reason)
_SES_KINDS = {
    "Bounce": ("bounce", BOUNCED, _ses_bounce),
    "Complaint": ("complaint", COMPLAINED, _ses_complaint),
    "Delivery": ("delivery", DELIVERED, _ses_delivery),
    "DeliveryDelay": ("deliveryDelay", DEFERRED, _ses_delay),
}


def ses_events(message: dict, event_id: str) -> list[FeedbackEvent]:
    """An SES notification (the JSON inside an SNS Message): bounces, complaints, deliveries, delays."""
    kind = str(message.get("notificationType") or message.get("eventType") or "")
    if kind not in _SES_KINDS:
        return []
    key, event, people_of = _SES_KINDS[kind]
    mail = message.get("mail") if isinstance(message.get("mail"), dict) else {}
    common = mail.get("commonHeaders") if isinstance(mail.get("commonHeaders"), dict) else {}
    ids = {"provider_id": bare_id(mail.get("messageId")), "message_id": bare_id(common.get("messageId"))}
    part = message.get(key) or {}
    permanent = kind == "Bounce" and part.get("bounceType") == "Permanent"
    when = event_time(part.get("timestamp") or mail.get("timestamp"))
    return [FeedbackEvent("ses", event, str(address), when, event_id, permanent=permanent, reason=reason, **ids)
            for address, reason in people_of(part) if address]
