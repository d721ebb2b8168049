"""The ledger's schema: one migration per version (PRAGMA user_version), applied in order."""

from __future__ import annotations

# Each entry upgrades the schema by one version (PRAGMA user_version). Never edit a shipped entry:
# append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE sends (
        id            INTEGER PRIMARY KEY,
        slug          TEXT NOT NULL UNIQUE,
        content_fp    TEXT NOT NULL,     -- Rendered.fingerprint of the issue
        list_fp       TEXT NOT NULL,     -- sha256 of the subscriber file + the audience filter
        settings_fp   TEXT NOT NULL,     -- sha256 of the settings that shape each message
        list_path     TEXT NOT NULL,
        subject       TEXT NOT NULL DEFAULT '',
        audience      INTEGER NOT NULL DEFAULT 0,
        skipped_json  TEXT NOT NULL DEFAULT '{}',  -- suppressed / invalid / duplicate / not in audience
        state         TEXT NOT NULL,     -- sending | finished | stopped
        created_at    TEXT NOT NULL,
        started_at    TEXT,
        finished_at   TEXT,
        updated_at    TEXT NOT NULL
    );
    CREATE TABLE recipients (
        id           INTEGER PRIMARY KEY,
        send_id      INTEGER NOT NULL REFERENCES sends(id) ON DELETE CASCADE,
        key          TEXT NOT NULL,      -- digest.addresses.address_key(email)
        email        TEXT NOT NULL,
        name         TEXT NOT NULL DEFAULT '',
        fields_json  TEXT NOT NULL DEFAULT '{}',
        tags_json    TEXT NOT NULL DEFAULT '[]',
        line         INTEGER NOT NULL DEFAULT 0,
        state        TEXT NOT NULL DEFAULT 'pending',
        attempts     INTEGER NOT NULL DEFAULT 0,
        permanent    INTEGER NOT NULL DEFAULT 0,  -- failed because the provider refused for good
        in_doubt     INTEGER NOT NULL DEFAULT 0,  -- was in flight when a run crashed
        provider_id  TEXT,
        code         TEXT,
        last_error   TEXT,
        claimed_at   TEXT,
        sent_at      TEXT,
        updated_at   TEXT NOT NULL,
        UNIQUE (send_id, key)
    );
    CREATE INDEX recipients_by_state ON recipients (send_id, state, id);
    CREATE TABLE suppressions (
        key         TEXT PRIMARY KEY,
        email       TEXT NOT NULL,
        reason      TEXT NOT NULL,
        source      TEXT NOT NULL DEFAULT 'manual',
        created_at  TEXT NOT NULL
    );
    """,
    """
    -- The `digest send --due` runner's notes on issues that could not start or expired (earlier
    -- versions created this table outside the migrations, hence IF NOT EXISTS).
    CREATE TABLE IF NOT EXISTS schedule_notes (
        slug        TEXT PRIMARY KEY,
        state       TEXT NOT NULL,     -- failed (could not start: retried every run) | expired (reported once)
        reason      TEXT NOT NULL,
        first_at    TEXT NOT NULL,     -- when a --due run first saw this state
        updated_at  TEXT NOT NULL
    );
    """,
    """
    -- Address keys fold case without merging mailboxes ('straße@' and 'strasse@' were one key):
    -- every stored key is made again from its address (digest_address_key is digest.addresses.
    -- address_key, registered on the connection). OR IGNORE: a clash keeps the row's old key.
    UPDATE OR IGNORE suppressions SET key = digest_address_key(email) WHERE key <> digest_address_key(email);
    UPDATE OR IGNORE recipients SET key = digest_address_key(email) WHERE key <> digest_address_key(email);
    """,
    """
    -- What came back after a send (digest.feedback.events): one row per event, replays ignored by
    -- event_key; send_id/recipient_id when the event could be tied to a recipient row.
    CREATE TABLE feedback_events (
        id            INTEGER PRIMARY KEY,
        event_key     TEXT NOT NULL UNIQUE,   -- source:event id:address key
        source        TEXT NOT NULL,          -- postmark | sendgrid | mailgun | resend | ses | bounce-mail | sync:<name>
        event         TEXT NOT NULL,          -- bounced | deferred | complained | unsubscribed | delivered
        permanent     INTEGER NOT NULL DEFAULT 0,  -- bounced: a hard bounce
        key           TEXT NOT NULL,
        email         TEXT NOT NULL,
        send_id       INTEGER REFERENCES sends(id) ON DELETE SET NULL,
        recipient_id  INTEGER REFERENCES recipients(id) ON DELETE SET NULL,
        provider_id   TEXT,
        reason        TEXT NOT NULL DEFAULT '',
        occurred_at   TEXT NOT NULL,
        recorded_at   TEXT NOT NULL
    );
    CREATE INDEX feedback_by_send ON feedback_events (send_id, event);
    CREATE INDEX feedback_by_key ON feedback_events (key, send_id);
    CREATE INDEX recipients_by_provider_id ON recipients (provider_id) WHERE provider_id IS NOT NULL;
    -- Where `digest suppress sync` got to, per provider list (a date, an offset or a cursor).
    CREATE TABLE sync_cursors (
        name        TEXT PRIMARY KEY,         -- e.g. sendgrid:bounces
        cursor      TEXT NOT NULL,
        updated_at  TEXT NOT NULL
    );
    -- Webhook nonces already used (Mailgun's tokens): a replayed signed request is refused.
    CREATE TABLE webhook_nonces (
        nonce    TEXT PRIMARY KEY,            -- provider:token
        seen_at  TEXT NOT NULL
    );
    """,
)
# The first version whose keys are address_key's (before: casefolded; readers recompute them).
REKEYED_FROM = 3

# The oldest schema a read-only open can use: later migrations only add tables, which the readers
# look for before using, so `digest status` works on a ledger no send has upgraded yet.
READABLE_FROM = 1


def split_sql(script: str) -> list[str]:
    """Split a migration into statements: '--' comments dropped first (they may hold a ';'), then at
    each ';' (the migrations hold no ';' and no '--' inside string literals)."""
    code = "\n".join(line.split("--", 1)[0] for line in script.splitlines())
    return [s.strip() for s in code.split(";") if s.strip()]
