"""The SQLite send ledger: one row per (issue, recipient), the sends themselves, the suppression list.

Every state change is committed before the next step depends on it: a batch is claimed
(pending → sending, attempts + 1) and COMMITTED before the transport sees it, and results are
recorded right after. A crash therefore leaves at most the in-flight batches in `sending`; the next
run reports them as "possibly delivered" and sends them again.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

from digest.addresses import address_key
from digest.clock import iso_stamp, now_iso
from digest.store.db import Database
from digest.store.schema import REKEYED_FROM
from digest.store.rows import (
    PENDING,
    RECIPIENT_STATES,
    Note,
    Outcome,
    RecipientRow,
    SendRow,
)

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings

LEDGER_FILENAME = "ledger.sqlite3"

_RECIPIENT_COLS = ("id, key, email, name, fields_json, tags_json, line, state, attempts, permanent, "
                   "in_doubt, provider_id, code, last_error, updated_at")


def _recipient(row: Sequence) -> RecipientRow:
    return RecipientRow(id=row[0], key=row[1], email=row[2], name=row[3], fields=json.loads(row[4]),
                        tags=tuple(json.loads(row[5])), line=row[6], state=row[7], attempts=row[8],
                        permanent=bool(row[9]), in_doubt=bool(row[10]), provider_id=row[11],
                        code=row[12], last_error=row[13], updated_at=row[14])


_SEND_COLS = ("id, slug, content_fp, list_fp, settings_fp, list_path, subject, audience, skipped_json, "
              "state, created_at, started_at, finished_at")


def _send(row: Sequence) -> SendRow:
    return SendRow(id=row[0], slug=row[1], content_fp=row[2], list_fp=row[3], settings_fp=row[4],
                   list_path=row[5], subject=row[6], audience=row[7], skipped=json.loads(row[8]),
                   state=row[9], created_at=row[10], started_at=row[11], finished_at=row[12])


class Ledger(Database):
    """The send ledger: sends, their recipients, the suppression list and the schedule notes."""

    @classmethod
    def for_settings(cls, settings: "Settings", *, readonly: bool = False) -> "Ledger":
        """The ledger in the project's state folder (settings [paths] state)."""
        return cls(ledger_path(settings), readonly=readonly)

    # --- suppression list ---------------------------------------------------------------------

    def suppress(self, email: str, reason: str, source: str = "manual") -> bool:
        """Add an address to the suppression list; False when it was already there."""
        def do():
            cur = self._db.execute(
                "INSERT OR IGNORE INTO suppressions (key, email, reason, source, created_at) VALUES (?,?,?,?,?)",
                (address_key(email), email.strip(), reason, source, now_iso()))
            return cur.rowcount == 1
        return self._write("cannot record the suppression", do)

    def suppress_many(self, rows: Iterable[tuple[str, str]], source: str) -> int:
        """Add (email, reason) pairs in one transaction; returns how many were new."""
        def do():
            before = self._db.total_changes
            stamp = now_iso()
            self._db.executemany(
                "INSERT OR IGNORE INTO suppressions (key, email, reason, source, created_at) VALUES (?,?,?,?,?)",
                ((address_key(e), e.strip(), r, source, stamp) for e, r in rows))
            return self._db.total_changes - before
        return self._write("cannot record the suppressions", do)

    def unsuppress(self, email: str) -> bool:
        """Remove an address from the suppression list; False when it was not there."""
        return self._write("cannot remove the suppression", lambda: self._db.execute(
            "DELETE FROM suppressions WHERE key = ?", (address_key(email),)).rowcount == 1)

    def unsuppress_from(self, email: str, sources: Sequence[str]) -> bool:
        """Remove an address's suppression only when its source is one of `sources`; False otherwise
        (a bounce or a complaint stays, whoever asks)."""
        marks = ",".join("?" * len(sources))
        return self._write("cannot remove the suppression", lambda: self._db.execute(
            f"DELETE FROM suppressions WHERE key = ? AND source IN ({marks})",
            (address_key(email), *sources)).rowcount == 1)

    def is_suppressed(self, email: str) -> bool:
        """Whether the address (by address_key) is on the suppression list."""
        return bool(self._read("SELECT 1 FROM suppressions WHERE key = ?", (address_key(email),)))

    def suppressed_keys(self) -> set[str]:
        """Every suppressed address_key (loaded once per send; a few MB even for 100,000 keys)."""
        if self.version < REKEYED_FROM:  # read-only, not upgraded yet: the stored keys are casefolded
            return {address_key(row[0]) for row in self._read("SELECT email FROM suppressions")}
        return {row[0] for row in self._read("SELECT key FROM suppressions")}

    def iter_suppressions(self) -> Iterator[tuple[str, str, str, str]]:
        """(email, reason, source, created_at) rows, oldest first."""
        try:
            yield from self._db.execute(
                "SELECT email, reason, source, created_at FROM suppressions ORDER BY created_at, key")
        except sqlite3.Error as exc:
            raise self._error("cannot read", exc) from exc

    # --- sends --------------------------------------------------------------------------------

    def get_send(self, slug: str) -> SendRow | None:
        """The send of this issue, or None when it never started."""
        rows = self._read(f"SELECT {_SEND_COLS} FROM sends WHERE slug = ?", (slug,))
        return _send(rows[0]) if rows else None

    def create_send(self, slug: str, *, content_fp: str, list_fp: str, settings_fp: str, list_path: str,
                    subject: str, recipients: Iterable[RecipientRow | tuple], skipped=None) -> SendRow:
        """Fix the audience: the send row and every recipient row, in ONE transaction.

        `recipients` is consumed lazily (streamed from the CSV); if it raises, nothing is kept.
        Items are RecipientRow or (key, email, name, fields, tags, line) tuples. `skipped` (a dict,
        or a callable giving one once the stream is consumed) records what the audience left out.
        """
        def do():
            stamp = now_iso()
            cur = self._db.execute(
                "INSERT INTO sends (slug, content_fp, list_fp, settings_fp, list_path, subject, state, "
                "created_at, started_at, updated_at) VALUES (?,?,?,?,?,?,'sending',?,?,?)",
                (slug, content_fp, list_fp, settings_fp, list_path, subject, stamp, stamp, stamp))
            send_id = cur.lastrowid
            before = self._db.total_changes
            self._db.executemany(
                "INSERT INTO recipients (send_id, key, email, name, fields_json, tags_json, line, updated_at) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (_recipient_params(send_id, r, stamp) for r in recipients))
            audience = self._db.total_changes - before
            self._db.execute("UPDATE sends SET audience = ?, skipped_json = ? WHERE id = ?",
                             (audience, json.dumps(_skipped(skipped)), send_id))
            return send_id
        self._write("cannot fix the audience", do)
        return self.get_send(slug)  # type: ignore[return-value]

    def amend_send(self, send_id: int, *, content_fp: str, list_fp: str, settings_fp: str,
                   list_path: str, subject: str, recipients: Iterable | None = None,
                   skipped=None) -> tuple[int, int]:
        """Accept changed content/list/settings (--resume-changed): new fingerprints; when
        `recipients` is given (the list changed), add the new ones and skip the unsent ones that
        left the list. Returns (added, dropped)."""
        def do():
            stamp = now_iso()
            self._db.execute(
                "UPDATE sends SET content_fp=?, list_fp=?, settings_fp=?, list_path=?, subject=?, updated_at=? "
                "WHERE id=?", (content_fp, list_fp, settings_fp, list_path, subject, stamp, send_id))
            if recipients is None:
                return 0, 0
            # Stream the current list into a temporary table, then diff it against the audience.
            self._db.execute("CREATE TEMP TABLE IF NOT EXISTS incoming (send_id, key PRIMARY KEY, email, name, "
                             "fields_json, tags_json, line, updated_at)")
            self._db.execute("DELETE FROM incoming")
            self._db.executemany("INSERT OR IGNORE INTO incoming VALUES (?,?,?,?,?,?,?,?)",
                                 (_recipient_params(send_id, r, stamp) for r in recipients))
            added = self._db.execute(
                "INSERT OR IGNORE INTO recipients (send_id, key, email, name, fields_json, tags_json, line, "
                "updated_at) SELECT * FROM incoming ORDER BY line").rowcount
            dropped = self._db.execute(
                "UPDATE recipients SET state='skipped', last_error='no longer in the list', updated_at=? "
                "WHERE send_id=? AND state IN ('pending','deferred','failed') AND permanent=0 "
                "AND key NOT IN (SELECT key FROM incoming)", (stamp, send_id)).rowcount
            audience = self._db.execute("SELECT count(*) FROM recipients WHERE send_id=?", (send_id,)).fetchone()[0]
            self._db.execute("UPDATE sends SET audience=?, skipped_json=? WHERE id=?",
                             (audience, json.dumps(_skipped(skipped)), send_id))
            self._db.execute("DROP TABLE incoming")
            return added, dropped
        return self._write("cannot record the changed send", do)

    def set_send_state(self, send_id: int, state: str) -> None:
        """sending / stopped / finished (finished also stamps finished_at, unless the send had finished
        before and no recipient changed since: a resume with nothing to do keeps the finish time)."""
        def do():
            stamp = now_iso()
            self._db.execute(
                "UPDATE sends SET state=?, updated_at=?, finished_at=CASE WHEN ?='finished' AND (finished_at IS NULL "
                "OR EXISTS (SELECT 1 FROM recipients r WHERE r.send_id=sends.id AND r.updated_at > sends.finished_at)) "
                "THEN ? ELSE finished_at END WHERE id=?", (state, stamp, state, stamp, send_id))
        self._write("cannot record the send state", do)

    # --- recipients ---------------------------------------------------------------------------

    def prepare_run(self, send_id: int, *, retry_failed: bool = False, include_pending: bool = True) -> dict:
        """Start a run: in-flight rows from a crash → pending (flagged in_doubt), deferred → pending,
        (retry) transient failures → pending, and newly suppressed addresses → skipped.
        Returns counts {'in_doubt', 'deferred', 'failed', 'suppressed'}."""
        def do():
            stamp = now_iso()
            counts = {}
            counts["suppressed"] = self._db.execute(
                "UPDATE recipients SET state='skipped', last_error='suppressed: ' || "
                "(SELECT reason FROM suppressions s WHERE s.key = recipients.key), updated_at=? "
                "WHERE send_id=? AND (state IN ('pending','deferred','sending') OR (state='failed' AND permanent=0)) "
                "AND key IN (SELECT key FROM suppressions)", (stamp, send_id)).rowcount
            counts["in_doubt"] = self._db.execute(
                "UPDATE recipients SET state='pending', in_doubt=1, "
                "last_error='possibly delivered: in flight when a run stopped', updated_at=? "
                "WHERE send_id=? AND state='sending'", (stamp, send_id)).rowcount
            counts["deferred"] = self._db.execute(
                "UPDATE recipients SET state='pending', updated_at=? WHERE send_id=? AND state='deferred'",
                (stamp, send_id)).rowcount
            counts["failed"] = 0
            if retry_failed:
                counts["failed"] = self._db.execute(
                    "UPDATE recipients SET state='pending', updated_at=? "
                    "WHERE send_id=? AND state='failed' AND permanent=0", (stamp, send_id)).rowcount
            self._db.execute("UPDATE sends SET state='sending', updated_at=? WHERE id=?", (stamp, send_id))
            return counts
        return self._write("cannot start the run", do)

    def retry_ids(self, send_id: int) -> list[int]:
        """Rows `digest retry` sends: deferred, retryable failures and in-flight leftovers, in list order."""
        return [r[0] for r in self._read(
            "SELECT id FROM recipients WHERE send_id=? AND (state IN ('deferred','sending') "
            "OR (state='failed' AND permanent=0)) ORDER BY id", (send_id,))]

    def claim(self, send_id: int, limit: int, *, ids: Sequence[int] | None = None,
              from_state: str = PENDING) -> list[RecipientRow]:
        """Claim up to `limit` rows (`from_state` → sending, attempts + 1) and COMMIT before returning.

        With `ids`, claim exactly those rows (still in `from_state`). If the write fails (read-only
        file, full disk, lock) a LedgerError is raised and nothing may be sent.
        """
        # An address suppressed while the send runs (a one-click unsubscribe, a bounce webhook) is
        # never claimed: the suppression test is in the claiming statement itself, so no unsubscribe
        # committed before the claim can slip into the batch.
        unsuppressed = "key NOT IN (SELECT key FROM suppressions)"

        def do():
            stamp = now_iso()
            if ids is not None:
                marks = ",".join("?" * len(ids))
                where = f"id IN ({marks}) AND state = ? AND {unsuppressed}"
                params: tuple = (*ids, from_state)
            else:
                where = (f"id IN (SELECT id FROM recipients WHERE send_id = ? AND state = ? AND {unsuppressed} "
                         "ORDER BY id LIMIT ?)")
                params = (send_id, from_state, limit)
            rows = self._db.execute(
                f"UPDATE recipients SET state='sending', attempts=attempts+1, claimed_at=?, updated_at=? "
                f"WHERE {where} RETURNING {_RECIPIENT_COLS}", (stamp, stamp, *params)).fetchall()
            claimed = sorted((_recipient(r) for r in rows), key=lambda r: r.id)
            self._skip_suppressed(send_id, from_state, ids, claimed, limit, stamp)
            return claimed
        return self._write("cannot claim the next batch", do)

    def _skip_suppressed(self, send_id: int, from_state: str, ids: Sequence[int] | None,
                         claimed: list[RecipientRow], limit: int, stamp: str) -> None:
        """Mark 'skipped' the suppressed rows a claim passed over (inside the claim's transaction).

        Only rows up to the last one claimed (or all that are left, once the claim came up short),
        so a claim reads a batch's worth of rows, never the whole audience."""
        where = "send_id = ? AND state = ? AND key IN (SELECT key FROM suppressions)"
        params: list = [send_id, from_state]
        if ids is not None:
            where += f" AND id IN ({','.join('?' * len(ids))})"
            params += list(ids)
        elif len(claimed) >= limit and claimed:
            where += " AND id < ?"
            params.append(claimed[-1].id)
        self._db.execute(
            "UPDATE recipients SET state='skipped', last_error='suppressed: ' || "
            "(SELECT reason FROM suppressions s WHERE s.key = recipients.key), updated_at=? "
            f"WHERE {where}", (stamp, *params))

    def record(self, outcomes: Sequence[Outcome], suppress: Sequence[tuple[str, str]] = ()) -> None:
        """Record transport results (and new suppressions) in one transaction."""
        if not outcomes and not suppress:
            return

        def do():
            stamp = now_iso()
            self._db.executemany(
                "UPDATE recipients SET state=?, provider_id=coalesce(?, provider_id), code=?, last_error=?, "
                "permanent=?, updated_at=?, sent_at=CASE WHEN ?='sent' THEN ? ELSE sent_at END, "
                "attempts=CASE WHEN ?='pending' THEN max(attempts-1, 0) ELSE attempts END WHERE id=?",
                [(o.state, o.provider_id, o.code, o.error, int(o.permanent), stamp, o.state, stamp, o.state,
                  o.recipient_id) for o in outcomes])
            if suppress:
                self._db.executemany(
                    "INSERT OR IGNORE INTO suppressions (key, email, reason, source, created_at) "
                    "VALUES (?,?,?,'bounce',?)", [(address_key(e), e, r, stamp) for e, r in suppress])
        self._write("cannot record the results", do)

    def defer_pending(self, send_id: int, ids: Sequence[int]) -> None:
        """Rows of a stopped `digest retry` still pending (never sent): deferred again, for the next retry."""
        def do():
            stamp = now_iso()
            self._db.executemany("UPDATE recipients SET state='deferred', updated_at=? "
                                 "WHERE id=? AND send_id=? AND state='pending'",
                                 [(stamp, rid, send_id) for rid in ids])
        self._write("cannot record the results", do)

    def counts(self, send_id: int) -> dict[str, int]:
        """How many recipients are in each state (every state present, zero when none)."""
        counts = dict.fromkeys(RECIPIENT_STATES, 0)
        for state, n in self._read("SELECT state, count(*) FROM recipients WHERE send_id=? GROUP BY state",
                                   (send_id,)):
            counts[state] = n
        return counts

    def failed_transient(self, send_id: int) -> int:
        """How many failed rows `digest retry` would try again (not refused for good)."""
        return self._read("SELECT count(*) FROM recipients WHERE send_id=? AND state='failed' AND permanent=0",
                          (send_id,))[0][0]

    def in_doubt_sent(self, send_id: int) -> int:
        """How many rows were re-sent after a crash (possibly received twice)."""
        return self._read("SELECT count(*) FROM recipients WHERE send_id=? AND in_doubt=1", (send_id,))[0][0]

    def recipients(self, send_id: int, states: Sequence[str] = RECIPIENT_STATES, limit: int | None = None
                   ) -> list[RecipientRow]:
        """Rows in the given states, in list order."""
        marks = ",".join("?" * len(states))
        sql = f"SELECT {_RECIPIENT_COLS} FROM recipients WHERE send_id=? AND state IN ({marks}) ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_recipient(r) for r in self._read(sql, (send_id, *states))]

    def has_state(self, send_id: int, state: str) -> bool:
        """Whether any row of the send is in `state`."""
        return bool(self._read("SELECT 1 FROM recipients WHERE send_id=? AND state=? LIMIT 1", (send_id, state)))

    # --- schedule notes (what a --due run found that the send rows cannot tell) ----------------

    def notes(self) -> dict[str, Note]:
        """Every note, by slug (empty when no --due run has written any yet)."""
        if not self._read("SELECT 1 FROM sqlite_master WHERE type='table' AND name='schedule_notes'"):
            return {}  # a read-only open of a ledger from before the table existed
        rows = self._read("SELECT slug, state, reason, first_at, updated_at FROM schedule_notes")
        return {r[0]: Note(*r) for r in rows}

    def set_note(self, slug: str, state: str, reason: str, at: datetime) -> None:
        """Record (or update) the note for `slug`; first_at is kept while the state stays the same."""
        stamp = iso_stamp(at)

        def do():
            self._db.execute(
                "INSERT INTO schedule_notes (slug, state, reason, first_at, updated_at) VALUES (?,?,?,?,?) "
                "ON CONFLICT(slug) DO UPDATE SET reason=excluded.reason, updated_at=excluded.updated_at, "
                "first_at=CASE WHEN state=excluded.state THEN first_at ELSE excluded.first_at END, "
                "state=excluded.state", (slug, state, reason, stamp, stamp))
        self._write("cannot record the schedule note", do)

    def clear_note(self, slug: str) -> None:
        """Forget the note for `slug` (the issue started sending)."""
        self._write("cannot clear the schedule note",
                    lambda: self._db.execute("DELETE FROM schedule_notes WHERE slug=?", (slug,)))


def _recipient_params(send_id: int, r, stamp: str) -> tuple:
    if isinstance(r, RecipientRow):
        key, email, name, fields, tags, line = r.key, r.email, r.name, r.fields, r.tags, r.line
    else:
        key, email, name, fields, tags, line = r
    return (send_id, key, email, name, json.dumps(dict(fields), ensure_ascii=False),
            _tags_json(tuple(sorted(tags))), line, stamp)


@functools.lru_cache(maxsize=256)
def _tags_json(tags: tuple) -> str:
    # A list has a handful of distinct tag sets; encode each once, not once per row.
    return json.dumps(list(tags), ensure_ascii=False)


def _skipped(skipped) -> dict:
    if callable(skipped):
        skipped = skipped()
    return dict(skipped or {})


def ledger_path(settings: "Settings") -> Path:
    """Where the ledger of this project lives."""
    return settings.path("state") / LEDGER_FILENAME
