"""`digest suppress sync`: pull bounces, complaints and unsubscribes from a provider's suppression
APIs into digest's suppression list — for teams that run no webhook server.

What each provider offers, and how far a sync is incremental:

* Postmark — the stream's suppressions dump (hard bounces, spam complaints, unsubscribes), from the
  date the last sync reached (`fromdate`; one answer, no pages).
* SendGrid — bounces, spam reports and global unsubscribes, each paged with limit/offset, from the
  newest `created` time the last sync saw (`start_time`).
* Mailgun — the domain's bounces, complaints and unsubscribes, paged by following `paging.next`
  until a page is empty. The lists take no date filter, so each sync reads them whole (recording is
  idempotent: what is known already changes nothing).
* Resend — it has no API for its bounce or complaint suppressions; its contacts carry an
  `unsubscribed` flag, read page by page (limit/after cursor). Bounces and complaints from Resend
  come only through the webhook.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator
from urllib.parse import quote, urlencode

from digest.errors import ConfigError, PermanentTransportError
from digest.feedback.events import BOUNCED, COMPLAINED, UNSUBSCRIBED, FeedbackEvent, event_time

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings
    from digest.transports.http import HTTPTransport

SYNCABLE = ("postmark", "sendgrid", "mailgun", "resend")
PAGE = 500


@dataclass
class ListSync:
    """What one provider list gave."""

    name: str         # e.g. sendgrid:bounces
    read: int = 0     # entries read
    added: int = 0    # addresses newly suppressed


def _json(transport: "HTTPTransport", path: str, headers: dict) -> object:
    response = transport.api_get(path, headers)
    try:
        data = response.json() if response.status == 200 else None
    except ValueError:
        data = None
    if data is None:
        raise PermanentTransportError(f"{transport.label} answered HTTP {response.status} for GET {path.split('?')[0]}: "
                                      f"{response.excerpt()}", "check the API key's permissions and the settings")
    return data


def _event(provider: str, kind: str, email: str, when, reason: str) -> FeedbackEvent:
    event, permanent = {"bounce": (BOUNCED, True), "complaint": (COMPLAINED, False)}.get(kind, (UNSUBSCRIBED, False))
    # One suppression entry is one event: the same entry read again by the next sync is a replay.
    return FeedbackEvent(f"sync:{provider}", event, email, event_time(when), f"{kind}:{when}", permanent=permanent,
                         reason=reason)


def postmark_lists(transport, cursor: Callable[[str], str | None]) -> Iterator[tuple[str, list, str | None]]:
    """The stream's suppressions since the last sync's date."""
    from digest.clock import utc_now
    from digest.transports.postmark import stream_suppressions

    name = "postmark:suppressions"
    today = utc_now().strftime("%Y-%m-%d")  # taken first: what arrives during the call is read next time
    rows = stream_suppressions(transport, since=cursor(name))
    yield name, [_event("postmark", r.reason, r.address, r.created_at, f"Postmark, origin {r.origin}") for r in rows], today


def sendgrid_lists(transport, cursor: Callable[[str], str | None]) -> Iterator[tuple[str, list, str | None]]:
    """Bounces, spam reports and global unsubscribes, page by page, from the newest time seen."""
    headers = {"Authorization": f"Bearer {transport.token}", "Accept": "application/json"}
    for path, kind in (("bounces", "bounce"), ("spam_reports", "complaint"), ("unsubscribes", "unsubscribe")):
        name = f"sendgrid:{path}"
        since = cursor(name)
        newest, offset = int(since or 0), 0
        while True:
            query = {"limit": PAGE, "offset": offset, **({"start_time": since} if since else {})}
            page = _json(transport, f"/v3/suppression/{path}?{urlencode(query)}", headers)
            rows = [r for r in page if isinstance(r, dict) and r.get("email")] if isinstance(page, list) else []
            newest = max([newest, *(int(r.get("created") or 0) for r in rows)])
            last = not isinstance(page, list) or len(page) < PAGE
            # The position moves only once the whole list is read: a sync cut short reads it again.
            yield name, [_event("sendgrid", kind, str(r["email"]), r.get("created"),
                                " ".join(str(r[k]) for k in ("status", "reason") if r.get(k))) for r in rows], \
                str(newest) if last else None
            if last:
                break
            offset += PAGE


def mailgun_lists(transport, cursor: Callable[[str], str | None]) -> Iterator[tuple[str, list, str | None]]:
    """The domain's bounces, complaints and unsubscribes, following paging.next (on the same API host only)."""
    auth = base64.b64encode(f"api:{transport.token}".encode()).decode()
    headers = {"Authorization": f"Basic {auth}", "Accept": "application/json"}
    base = transport.config.base_url
    domain = quote(transport.config.domain, safe="")
    for path, kind in (("bounces", "bounce"), ("complaints", "complaint"), ("unsubscribes", "unsubscribe")):
        name, url = f"mailgun:{path}", f"/v3/{domain}/{path}?limit=1000"  # Mailgun's largest page
        seen: set[str] = set()
        while url and url not in seen:
            seen.add(url)
            page = _json(transport, url, headers)
            items = page.get("items") if isinstance(page, dict) else None
            if not items:
                break
            yield name, [_event("mailgun", kind, str(r["address"]), r.get("created_at"),
                                " ".join(str(r[k]) for k in ("code", "error") if r.get(k)))
                         for r in items if isinstance(r, dict) and r.get("address")], None
            following = str((page.get("paging") or {}).get("next") or "")
            # the API key goes only where it came from: a next page on another host is not followed
            url = following[len(base):] if following.startswith(base + "/") else ""


def resend_lists(transport, cursor: Callable[[str], str | None], audience: str | None = None
                 ) -> Iterator[tuple[str, list, str | None]]:
    """Contacts marked unsubscribed (of one audience when given), page by page."""
    headers = {"Authorization": f"Bearer {transport.token}", "Accept": "application/json"}
    path = f"/audiences/{quote(audience, safe='')}/contacts" if audience else "/contacts"
    after = None
    while True:
        page = _json(transport, f"{path}?{urlencode({'limit': 100, **({'after': after} if after else {})})}", headers)
        rows = page.get("data") if isinstance(page, dict) and isinstance(page.get("data"), list) else []
        yield "resend:contacts", [_event("resend", "unsubscribe", str(r["email"]), r.get("created_at"),
                                         "unsubscribed in Resend")
                                  for r in rows if isinstance(r, dict) and r.get("unsubscribed") and r.get("email")], None
        if not (isinstance(page, dict) and page.get("has_more") and rows and rows[-1].get("id")):
            break
        after = str(rows[-1]["id"])


def sync_suppressions(settings: "Settings", transport_name: str | None = None) -> list[ListSync]:
    """Pull one provider's suppressions into the list (default: [send] transport); one result per list."""
    from digest.store.events import get_cursor, record_events, set_cursor
    from digest.store.ledger import Ledger
    from digest.transports import transport_class

    name = transport_name or settings.send.transport
    if name not in SYNCABLE:
        raise ConfigError(f"transport '{name}' has no suppression API to sync from.",
                          f"give --transport one of: {', '.join(SYNCABLE)} (SMTP users: digest bounces fetch)")
    transport = transport_class(name)(settings)
    lists = {"postmark": postmark_lists, "sendgrid": sendgrid_lists, "mailgun": mailgun_lists,
             "resend": lambda t, c: resend_lists(t, c, settings.feedback.resend_audience)}[name]
    results: dict[str, ListSync] = {}
    with Ledger.for_settings(settings) as ledger, transport:
        for list_name, events, position in lists(transport, lambda n: get_cursor(ledger, n)):
            done = record_events(ledger, events, soft_limit=0)
            entry = results.setdefault(list_name, ListSync(list_name))
            entry.read += len(events)
            entry.added += len(done.suppressed)
            if position is not None:  # after the page is recorded: a failure later re-reads, never skips
                set_cursor(ledger, list_name, position)
    return list(results.values())
