"""What the ledger stores, as Python values: recipient states, send rows, recipient rows, outcomes."""

from __future__ import annotations

from dataclasses import dataclass

# Recipient states. pending → sending → sent | failed | deferred; skipped = excluded after the
# audience was fixed (suppressed meanwhile, or dropped from the list with --resume-changed).
PENDING, SENDING, SENT, FAILED, DEFERRED, SKIPPED = "pending", "sending", "sent", "failed", "deferred", "skipped"
RECIPIENT_STATES = (PENDING, SENDING, SENT, FAILED, DEFERRED, SKIPPED)


@dataclass(frozen=True)
class SendRow:
    """One issue's send as the ledger knows it."""

    id: int
    slug: str
    content_fp: str
    list_fp: str
    settings_fp: str
    list_path: str
    subject: str
    audience: int
    skipped: dict
    state: str
    created_at: str
    started_at: str | None
    finished_at: str | None


@dataclass(frozen=True)
class RecipientRow:
    """One recipient row, with what is needed to rebuild their message without the CSV."""

    id: int
    key: str
    email: str
    name: str
    fields: dict
    tags: tuple
    line: int
    state: str = PENDING
    attempts: int = 0
    permanent: bool = False
    in_doubt: bool = False
    provider_id: str | None = None
    code: str | None = None
    last_error: str | None = None
    updated_at: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What to record for one recipient after the transport answered."""

    recipient_id: int
    state: str                 # sent | failed | deferred | pending (handed back, not attempted)
    provider_id: str | None = None
    code: str | None = None
    error: str | None = None
    permanent: bool = False


@dataclass(frozen=True)
class Note:
    """What a `--due` run recorded about one issue that the send rows cannot tell."""

    slug: str
    state: str        # failed (could not start: retried every run) | expired (reported once)
    reason: str
    first_at: str
    updated_at: str
