"""`digest suppress sync` against a local stand-in of each provider's suppression API and its paging."""

from __future__ import annotations

import pytest

from digest.errors import ConfigError
from digest.feedback.sync import sync_suppressions
from digest.store.ledger import Ledger
from tests.checks.helpers import run
from tests.helpers.fake_suppressions import FakeSuppressions


@pytest.fixture
def fake(settings, monkeypatch):
    server = FakeSuppressions()
    for name, extra in (("postmark", {}), ("sendgrid", {}), ("resend", {}), ("mailgun", {"domain": "mg.example.org"})):
        settings.transports[name] = {"base_url": server.url, **extra}
    for var in ("POSTMARK_TOKEN", "SENDGRID_API_KEY", "MAILGUN_API_KEY", "RESEND_API_KEY"):
        monkeypatch.setenv(var, f"token-{var.lower()}")
    yield server
    server.close()


def suppressed(settings) -> dict[str, tuple[str, str]]:
    with Ledger.for_settings(settings, readonly=True) as ledger:
        return {e: (r, s) for e, r, s, _ in ledger.iter_suppressions()}


def test_sendgrid_pages_through_each_list_and_then_syncs_from_where_it_got_to(settings, fake):
    fake.sendgrid["bounces"] = [{"created": 1443651125 + i, "email": f"b{i}@example.org", "reason": "550 5.1.1 unknown",
                                 "status": "5.1.1"} for i in range(1203)]
    fake.sendgrid["spam_reports"] = [{"created": 1443651141, "email": "spam@example.org", "ip": "10.63.202.100"}]
    fake.sendgrid["unsubscribes"] = [{"created": 1443651141, "email": "gone@example.org"}]
    results = {r.name: r for r in sync_suppressions(settings, "sendgrid")}
    assert (results["sendgrid:bounces"].read, results["sendgrid:bounces"].added) == (1203, 1203)
    offsets = [q.get("offset") for p, q, _ in fake.requests if p.endswith("/bounces")]
    assert offsets == ["0", "500", "1000"]
    lists = suppressed(settings)
    assert lists["spam@example.org"] == ("complaint", "sync:sendgrid") and len(lists) == 1205
    assert lists["b0@example.org"][0] == "bounce: 5.1.1 550 5.1.1 unknown"
    assert fake.requests[0][2]["Authorization"] == "Bearer token-sendgrid_api_key"
    fake.requests.clear()
    fake.sendgrid["bounces"].append({"created": 1443660000, "email": "new@example.org", "reason": "x", "status": "5.0.0"})
    again = {r.name: r for r in sync_suppressions(settings, "sendgrid")}
    assert again["sendgrid:bounces"].added == 1
    starts = [q.get("start_time") for p, q, _ in fake.requests if p.endswith("/bounces")]
    assert starts == [str(1443651125 + 1202)]  # from the newest seen, not from the beginning


def test_mailgun_follows_paging_next_until_an_empty_page(settings, fake):
    fake.mailgun["bounces"] = [{"address": f"m{i:04}@example.org", "code": "550", "error": "No such mailbox",
                                "created_at": "Fri, 21 Oct 2011 11:02:55 UTC"} for i in range(1100)]
    fake.mailgun["complaints"] = [{"address": "c@example.org", "created_at": "Tue, 15 Nov 2011 08:25:11 GMT"}]
    fake.mailgun["unsubscribes"] = [{"address": "u@example.org", "tags": ["*"],
                                     "created_at": "Fri, 21 Oct 2011 11:02:55 GMT"}]
    results = {r.name: r for r in sync_suppressions(settings, "mailgun")}
    assert results["mailgun:bounces"].read == 1100 and results["mailgun:complaints"].added == 1
    pages = [q for p, q, _ in fake.requests if p == "/v3/mg.example.org/bounces"]
    assert len(pages) == 3 and pages[1]["page"] == "next"  # 1000 + 100 + the empty page
    assert fake.requests[0][2]["Authorization"].startswith("Basic ")
    assert suppressed(settings)["u@example.org"][0] == "unsubscribed"


def test_postmark_reads_the_dump_from_the_last_sync_date(settings, fake):
    fake.postmark = [{"EmailAddress": "hard@example.org", "SuppressionReason": "HardBounce", "Origin": "Recipient",
                      "CreatedAt": "2019-12-10T08:58:33-05:00"},
                     {"EmailAddress": "link@example.org", "SuppressionReason": "ManualSuppression",
                      "Origin": "Recipient", "CreatedAt": "2019-12-17T08:58:33-05:00"}]
    sync_suppressions(settings, "postmark")
    assert set(suppressed(settings)) == {"hard@example.org", "link@example.org"}
    sync_suppressions(settings, "postmark")
    assert "fromdate" not in fake.requests[0][1] and fake.requests[-1][1]["fromdate"] >= "2026-01-01"


def test_resend_contacts_marked_unsubscribed(settings, fake):
    fake.resend = [{"id": f"id-{i}", "email": f"r{i}@example.org", "unsubscribed": i % 50 == 0,
                    "created_at": "2023-10-06T23:47:56.678Z"} for i in range(230)]
    results = sync_suppressions(settings, "resend")
    assert results[0].added == 5 and len([1 for p, _, _ in fake.requests if p == "/contacts"]) == 3


def test_smtp_has_nothing_to_sync(settings):
    with pytest.raises(ConfigError, match="no suppression API"):
        sync_suppressions(settings, "smtp")


def test_the_command(settings, fake, project):
    fake.sendgrid["unsubscribes"] = [{"created": 1443651141, "email": "gone@example.org"}]
    toml = project / "digest.toml"
    toml.write_text(toml.read_text() + f'\n[sendgrid]\nbase_url = "{fake.url}"\n')
    code, out, err = run("suppress", "sync", "--transport", "sendgrid")
    assert code == 0, err
    assert "sendgrid:unsubscribes" in out and "1 read, 1 newly suppressed" in out


def test_sync_before_send_runs_from_the_gate(settings, fake):
    from types import SimpleNamespace

    from digest.checks.run import _sync_before_send

    fake.sendgrid["bounces"] = [{"created": 1443651125, "email": "b@example.org", "reason": "x", "status": "5.1.1"}]
    _sync_before_send(SimpleNamespace(settings=settings, transport_name="sendgrid"))
    assert fake.requests == []  # off by default
    settings.feedback.sync_before_send = True
    _sync_before_send(SimpleNamespace(settings=settings, transport_name="sendgrid"))
    assert "b@example.org" in suppressed(settings)
