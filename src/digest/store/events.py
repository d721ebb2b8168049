"""The ledger's feedback tables: events that came back after a send, sync cursors, webhook nonces.

Every writer works inside one ledger transaction, so an event, the suppression it causes and the
nonce of the request that carried it are kept together or not at all. Readers check that the
tables exist: an older ledger opened read-only (`digest status`) simply has no events.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Sequence

from digest.addresses import address_key
from digest.clock import iso_stamp, now_iso

if TYPE_CHECKING:  # pragma: no cover
    from digest.feedback.events import FeedbackEvent
    from digest.store.ledger import Ledger


@dataclass
class Recorded:
    """What recording a batch of events did."""

    new: int = 0
    replayed: int = 0
    matched: int = 0                  # tied to a recipient row of a send
    suppressed: list[tuple[str, str]] = field(default_factory=list)  # (address, reason) newly suppressed


@dataclass(frozen=True)
class SendFeedback:
    """A send's counts of what came back, by distinct recipient, and its sent count."""

    sent: int
    delivered: int = 0
    hard_bounced: int = 0
    soft_bounced: int = 0
    complained: int = 0
    unsubscribed: int = 0

    def rate(self, count: int) -> float:
        """count as a percentage of the messages sent (0 when nothing was sent)."""
        return 100.0 * count / self.sent if self.sent else 0.0


def has_table(ledger: "Ledger", name: str) -> bool:
    """Whether the ledger has this table (a read-only open of an older ledger may not)."""
    return bool(ledger._read("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)))


def record_events(ledger: "Ledger", events: Iterable["FeedbackEvent"], *, soft_limit: int,
                  nonce: str | None = None) -> Recorded:
    """Record events (replays change nothing), suppress what they call for, and the request's nonce —
    in one transaction."""
    events = list(events)
    result = Recorded()

    def do():
        db = ledger._db
        if nonce is not None:
            db.execute("INSERT INTO webhook_nonces (nonce, seen_at) VALUES (?, ?)", (nonce, now_iso()))
        for event in events:
            _record_one(db, event, soft_limit, result)
    ledger._write("cannot record the feedback events", do)
    return result


def _record_one(db: sqlite3.Connection, event: "FeedbackEvent", soft_limit: int, result: Recorded) -> None:
    key = address_key(event.email)
    row = _match(db, key, event)
    send_id, recipient_id = row if row else (None, None)
    cur = db.execute(
        "INSERT OR IGNORE INTO feedback_events (event_key, source, event, permanent, key, email, send_id, "
        "recipient_id, provider_id, reason, occurred_at, recorded_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (event.key, event.source, event.event, int(event.permanent), key, event.email.strip(), send_id,
         recipient_id, event.provider_id, event.reason[:1000], iso_stamp(event.occurred_at), now_iso()))
    if cur.rowcount != 1:
        result.replayed += 1
        return
    result.new += 1
    result.matched += row is not None
    reason = ""
    if event.suppresses:
        reason = event.suppression_reason()
    elif event.event == "bounced" and send_id is not None and soft_limit > 0 and _soft_streak(db, key, soft_limit):
        reason = f"soft bounces on {soft_limit} consecutive sends: {event.reason}"[:300]
    if reason and db.execute(
            "INSERT OR IGNORE INTO suppressions (key, email, reason, source, created_at) VALUES (?,?,?,?,?)",
            (key, event.email.strip(), reason, event.source, now_iso())).rowcount == 1:
        result.suppressed.append((event.email.strip(), reason))


def _match(db: sqlite3.Connection, key: str, event: "FeedbackEvent") -> tuple[int, int] | None:
    """(send id, recipient row id) of the message the event is about: by the row id digest put in the
    message's metadata, the provider's message id, or digest's Message-ID (it names the issue)."""
    if event.recipient_id is not None:
        row = db.execute("SELECT send_id, id FROM recipients WHERE id=? AND key=?",
                         (event.recipient_id, key)).fetchone()
        if row:
            return row
    if event.provider_id:
        pid = event.provider_id
        row = db.execute("SELECT send_id, id FROM recipients WHERE provider_id IN (?, ?) AND key=? "
                         "ORDER BY id DESC LIMIT 1", (pid, f"<{pid}>", key)).fetchone()
        if row:
            return row
    slug = slug_of_message_id(event.message_id)
    if slug:
        row = db.execute("SELECT r.send_id, r.id FROM recipients r JOIN sends s ON s.id = r.send_id "
                         "WHERE s.slug=? AND r.key=?", (slug, key)).fetchone()
        if row:
            return row
    return None


def slug_of_message_id(message_id: str | None) -> str | None:
    """The issue slug in a Message-ID digest wrote (`<slug.hash@domain>`), else None."""
    local = (message_id or "").strip().strip("<>").partition("@")[0]
    slug, dot, digest = local.rpartition(".")
    return slug if dot and slug and len(digest) == 24 and all(c in "0123456789abcdef" for c in digest) else None


def latest_sent_row(ledger: "Ledger", email: str) -> int | None:
    """The recipient row of the most recent send that reached this address (for a bounce that does not
    say which message it was about), or None."""
    rows = ledger._read("SELECT r.id FROM recipients r JOIN sends s ON s.id = r.send_id WHERE r.key=? AND "
                        "r.state='sent' ORDER BY s.started_at DESC, s.id DESC LIMIT 1", (address_key(email),))
    return rows[0][0] if rows else None


def _soft_streak(db: sqlite3.Connection, key: str, limit: int) -> bool:
    """Whether the address bounced (soft or hard) on each of the last `limit` sends that reached it."""
    sends = [r[0] for r in db.execute(
        "SELECT r.send_id FROM recipients r JOIN sends s ON s.id = r.send_id WHERE r.key=? AND r.state='sent' "
        "ORDER BY s.started_at DESC, s.id DESC LIMIT ?", (key, limit))]
    if len(sends) < limit:
        return False
    marks = ",".join("?" * len(sends))
    bounced = db.execute(f"SELECT count(DISTINCT send_id) FROM feedback_events WHERE key=? AND event='bounced' "
                         f"AND send_id IN ({marks})", (key, *sends)).fetchone()[0]
    return bounced == limit


def nonce_seen(ledger: "Ledger", nonce: str) -> bool:
    """Whether a webhook request with this nonce was already accepted."""
    return has_table(ledger, "webhook_nonces") and bool(
        ledger._read("SELECT 1 FROM webhook_nonces WHERE nonce=?", (nonce,)))


def forget_nonces(ledger: "Ledger", before: str) -> None:
    """Drop nonces older than a stamp: a request that old fails its timestamp check anyway."""
    ledger._write("cannot prune the webhook nonces",
                  lambda: ledger._db.execute("DELETE FROM webhook_nonces WHERE seen_at < ?", (before,)))


def send_feedback(ledger: "Ledger", send_id: int) -> SendFeedback | None:
    """The send's feedback counts, or None when no event about it was recorded (or no table yet)."""
    if not has_table(ledger, "feedback_events"):
        return None
    rows = ledger._read("SELECT event, permanent, count(DISTINCT key) FROM feedback_events WHERE send_id=? "
                        "GROUP BY event, permanent", (send_id,))
    if not rows:
        return None
    counts = {(event, bool(permanent)): n for event, permanent, n in rows}
    sent = ledger._read("SELECT count(*) FROM recipients WHERE send_id=? AND state='sent'", (send_id,))[0][0]
    return SendFeedback(sent=sent, delivered=counts.get(("delivered", False), 0),
                        hard_bounced=counts.get(("bounced", True), 0), soft_bounced=counts.get(("bounced", False), 0),
                        complained=counts.get(("complained", False), 0),
                        unsubscribed=counts.get(("unsubscribed", False), 0))


def previous_send(ledger: "Ledger", slug: str) -> tuple[str, int] | None:
    """(slug, send id) of the latest send of another issue that sent anything, or None."""
    rows = ledger._read("SELECT s.slug, s.id FROM sends s WHERE s.slug <> ? AND EXISTS (SELECT 1 FROM recipients r "
                        "WHERE r.send_id = s.id AND r.state='sent') ORDER BY s.started_at DESC, s.id DESC LIMIT 1",
                        (slug,))
    return (rows[0][0], rows[0][1]) if rows else None


def get_cursor(ledger: "Ledger", name: str) -> str | None:
    """Where `digest suppress sync` got to in one provider list."""
    if not has_table(ledger, "sync_cursors"):
        return None
    rows = ledger._read("SELECT cursor FROM sync_cursors WHERE name=?", (name,))
    return rows[0][0] if rows else None


def set_cursor(ledger: "Ledger", name: str, cursor: str) -> None:
    """Remember where a sync got to (after its events are recorded)."""
    ledger._write("cannot record the sync position", lambda: ledger._db.execute(
        "INSERT INTO sync_cursors (name, cursor, updated_at) VALUES (?,?,?) ON CONFLICT(name) DO UPDATE SET "
        "cursor=excluded.cursor, updated_at=excluded.updated_at", (name, cursor, now_iso())))


def event_rows(ledger: "Ledger", send_id: int, events: Sequence[str], limit: int = 20) -> list[tuple]:
    """(email, event, permanent, reason, occurred_at) of a send's events of these types, newest first."""
    if not has_table(ledger, "feedback_events"):
        return []
    marks = ",".join("?" * len(events))
    return ledger._read(f"SELECT email, event, permanent, reason, occurred_at FROM feedback_events WHERE send_id=? "
                        f"AND event IN ({marks}) ORDER BY occurred_at DESC LIMIT ?", (send_id, *events, limit))
