"""`/unsubscribe?token=…`: the one-click endpoint (RFC 8058) and the reader's unsubscribe pages.

- POST with the body `List-Unsubscribe=One-Click` (what Gmail, Yahoo and Apple Mail send) or the
  page's own form: the address in the signed token goes on the suppression list (source `one-click`
  or `web`), answered at once with the confirmation page. Idempotent; no cookie, no redirect.
- GET: a page that names the address and has one button that POSTs. A GET never changes anything:
  link scanners and mail filters fetch every URL in a message.
- POST with `action=resubscribe` (the confirmation page's "I clicked by mistake" button): removes the
  suppression only when a reader made it (`web` or `one-click`), never a bounce's or a complaint's.
- A token that does not verify (malformed, altered, another newsletter's, the development key's) is
  a 400 page that says what to do; no page tells whether an address is on the list.

A send that is running skips an address unsubscribed here from its next batch: the ledger's claim
leaves out suppressed addresses in the same statement that claims the rows.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from digest.errors import DigestError
from digest.web.pages import page

ROUTES = [Rule("/unsubscribe", endpoint="unsubscribe", methods=["GET", "POST"])]

ONE_CLICK_BODY = "List-Unsubscribe=One-Click"
REASON = "unsubscribed"
# A write waits this long for the ledger while a send commits its batches (WAL: readers never wait).
WRITE_TIMEOUT = 30.0
_VERIFIER_LOCK = threading.Lock()


@dataclass(frozen=True)
class _Verifier:
    keys: object          # digest.audience.tokens.KeyRing
    newsletter_id: str


def _verifier(app) -> _Verifier:
    """The key ring and the newsletter id, made once per app (the real ring: never the development key)."""
    found = getattr(app, "unsubscribe_verifier", None)
    if found is None:
        with _VERIFIER_LOCK:
            found = getattr(app, "unsubscribe_verifier", None)
            if found is None:
                from digest.audience.tokens import KeyRing
                from digest.newsletter import newsletter_identity

                found = _Verifier(KeyRing.for_settings(app.settings), newsletter_identity(app.settings).newsletter_id)
                app.unsubscribe_verifier = found
    return found


def address_of(app, token: str) -> str | None:
    """The address a token of this newsletter was signed for; None when it does not verify."""
    verifier = _verifier(app)
    try:
        _, address = verifier.keys.verify(token, verifier.newsletter_id)
    except DigestError:
        return None
    return address


def unsubscribe(app, request: Request) -> Response:
    """GET: the page with the button; POST: unsubscribe (or resubscribe) the token's address."""
    token = request.args.get("token", "")
    if not token:
        return page(app.settings, "none", 400 if request.method == "POST" else 200)
    address = address_of(app, token)
    if address is None:
        return page(app.settings, "bad", 400)
    if request.method != "POST":
        return page(app.settings, "ask", email=address, action="unsubscribe", button="ask_button")
    form = request.form
    if form.get("action") == "resubscribe":
        return _resubscribe(app, address)
    # RFC 8058: the mail client's POST carries exactly this pair; anything else came from the page.
    source = "one-click" if form.get("List-Unsubscribe") == "One-Click" else "web"
    _ledger(app, lambda ledger: ledger.suppress(address, REASON, source=source))
    return page(app.settings, "done", email=address, action="resubscribe", button="undo_button", quiet=True)


def _resubscribe(app, address: str) -> Response:
    """Take back a reader's own unsubscribe; a bounce's or a complaint's stays (said without detail)."""
    from digest.store.suppressions import READER_SOURCES

    def undo(ledger) -> bool:
        ledger.unsuppress_from(address, READER_SOURCES)
        return ledger.is_suppressed(address)

    if _ledger(app, undo):
        return page(app.settings, "kept", email=address)
    return page(app.settings, "back", email=address)


_THREAD = threading.local()


def _ledger(app, work):
    """Run `work(ledger)` on this server thread's own connection (kept open: opening one per request
    costs more than the write), dropped after an error so the next request starts clean."""
    from digest.store.ledger import Ledger, ledger_path

    path = ledger_path(app.settings)
    ledger = getattr(_THREAD, "ledgers", {}).get(path)
    if ledger is None:
        ledger = Ledger(path, timeout=WRITE_TIMEOUT)
        _THREAD.__dict__.setdefault("ledgers", {})[path] = ledger
    try:
        return work(ledger)
    except BaseException:
        _THREAD.ledgers.pop(path, None)
        ledger.close()
        raise
