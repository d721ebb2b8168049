"""The one address key: case folded, distinct mailboxes kept apart; tokens and ledgers from before still work."""

from __future__ import annotations

import base64
import hashlib
import hmac
import sqlite3

import pytest

from digest.addresses import address_key
from digest.audience.subscribers import read_subscribers
from digest.audience.tokens import KeyRing, TokenError
from digest.store.ledger import Ledger
from digest.store.schema import MIGRATIONS

K1 = "k1:bn7IWq1aSdrgHIDxwfs0nqQB1JcTlIhZZNIu8yz2sRs"
NL = "innovation-hub.example.org"


@pytest.mark.parametrize("one, other", [
    ("straße@example.de", "strasse@example.de"),   # casefold('ß') is 'ss'
    ("ﬀ@example.org", "ff@example.org"),           # casefold('ﬀ') is 'ff'
    ("ſam@example.org", "sam@example.org"),        # long s
    ("ὀδυσσεύς@example.gr", "ὀδυσσεύσ@example.gr"),  # final sigma
])
def test_distinct_mailboxes_get_distinct_keys(one, other):
    assert address_key(one) != address_key(other)


@pytest.mark.parametrize("one, other", [
    ("Ann@Example.ORG", "ann@example.org"),
    ("STRASSE@example.de", "strasse@example.de"),
    ("Straße@example.de", "straße@example.de"),
    ("ZOË@bücher.de", "zoë@xn--bcher-kva.de"),
    ("zoe\u0308@example.org", "zo\u00eb@example.org"),  # the same letter, composed or not (NFC)
])
def test_case_and_spelling_of_one_mailbox_share_a_key(one, other):
    assert address_key(one) == address_key(other)


def test_the_list_keeps_both_mailboxes(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("email,first_name\nstraße@example.de,A\nstrasse@example.de,B\nSTRASSE@example.de,C\n",
                    encoding="utf-8")
    assert [s.email for s in read_subscribers(path)] == ["straße@example.de", "strasse@example.de"]


def test_suppressing_one_mailbox_leaves_the_other(tmp_path):
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        ledger.suppress("strasse@example.de", "unsubscribed")
        assert ledger.is_suppressed("STRASSE@example.de")
        assert not ledger.is_suppressed("straße@example.de")
        assert address_key("straße@example.de") not in ledger.suppressed_keys()


# --- tokens issued before the change -----------------------------------------------------------

def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _casefold_token(secret: str, email: str, newsletter: str = NL) -> str:
    """A token as digest signed it before: the MAC over the casefolded address."""
    local, _, domain = email.rpartition("@")
    key = f"{local.casefold()}@{domain.lower()}"
    mac = hmac.new(secret.encode(), b"\0".join((b"digest-unsubscribe-v1", newsletter.encode(), key.encode())),
                   hashlib.sha256).digest()[:16]
    return ".".join(("k1", _b64(newsletter.encode()), _b64(email.encode()), _b64(mac)))


def test_tokens_issued_before_still_verify():
    ring = KeyRing.parse(K1)
    secret = K1.split(":", 1)[1]
    for email in ("ann@example.org", "Straße@example.de", "ﬀoo@example.org"):
        assert ring.verify(_casefold_token(secret, email), NL) == (NL, email)
        assert ring.verify(ring.sign(NL, email), NL) == (NL, email)


def test_a_new_token_is_for_its_own_mailbox_only():
    ring = KeyRing.parse(K1)
    kid, nl, _, mac = ring.sign(NL, "straße@example.de").split(".")
    with pytest.raises(TokenError, match="signature does not match"):
        ring.verify(".".join((kid, nl, _b64(b"strasse@example.de"), mac)))


# --- a ledger written before the change --------------------------------------------------------

def _old_ledger(path):
    """A ledger as the previous version left it: schema version 2, keys casefolded."""
    from digest.store.schema import split_sql

    db = sqlite3.connect(path)
    for script in MIGRATIONS[:2]:
        for statement in split_sql(script):
            db.execute(statement)
    stamp = "2026-01-01T00:00:00.000Z"
    db.execute("INSERT INTO suppressions VALUES ('strasse@example.de', 'Straße@example.de', 'unsubscribed', "
               "'manual', ?)", (stamp,))
    db.execute("INSERT INTO sends (slug, content_fp, list_fp, settings_fp, list_path, state, created_at, "
               "updated_at) VALUES ('issue-1', 'c', 'l', 's', 'l.csv', 'sending', ?, ?)", (stamp, stamp))
    db.executemany("INSERT INTO recipients (send_id, key, email, line, updated_at) VALUES (1, ?, ?, ?, ?)",
                   [("mass@example.de", "Maß@example.de", 2, stamp), ("ann@example.org", "ann@example.org", 3, stamp)])
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()


def test_an_old_ledger_is_rekeyed_when_opened_for_writing(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    _old_ledger(path)
    with Ledger(path, readonly=True) as ledger:  # status and dry runs read it as it is: still right
        assert address_key("Straße@example.de") in ledger.suppressed_keys()
    with Ledger(path) as ledger:
        assert ledger.is_suppressed("straße@example.de")
        assert not ledger.is_suppressed("strasse@example.de")
        send = ledger.get_send("issue-1")
        # The resumed send: the list read with the new key finds the rows it already has.
        added, dropped = ledger.amend_send(send.id, content_fp="c", list_fp="l2", settings_fp="s",
                                           list_path="l.csv", subject="Hi", recipients=[
                                               (address_key("Maß@example.de"), "Maß@example.de", "", {}, (), 2),
                                               (address_key("ann@example.org"), "ann@example.org", "", {}, (), 3)])
        assert (added, dropped) == (0, 0)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert {r[0] for r in db.execute("SELECT key FROM recipients")} == {"maß@example.de", "ann@example.org"}
