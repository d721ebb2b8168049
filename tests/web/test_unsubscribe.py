"""`/unsubscribe` under the real waitress server: one-click POSTs as Gmail sends them, the pages, bad tokens."""

from __future__ import annotations

import pytest

from digest.audience.tokens import DEV_KID, DEV_SECRET, KeyRing
from digest.errors import ConfigError
from digest.newsletter import newsletter_identity
from digest.store.ledger import Ledger, ledger_path
from tests.helpers.web import ONE_CLICK, request, running_server, token_for

READER = "ann.reader@example.net"


@pytest.fixture
def server(settings, monkeypatch):
    with running_server(settings, monkeypatch) as srv:
        yield srv


def suppressions(settings) -> list[tuple]:
    if not ledger_path(settings).exists():
        return []
    with Ledger.for_settings(settings, readonly=True) as ledger:
        return [(email, source) for email, _, source, _ in ledger.iter_suppressions()]


def test_a_one_click_post_exactly_as_gmail_sends_it(settings, server):
    url = f"{server.url}/unsubscribe?token={token_for(settings, READER)}"
    status, headers, body = request(url, "POST", "List-Unsubscribe=One-Click", ONE_CLICK)
    assert status == 200
    assert "set-cookie" not in headers and "location" not in headers
    assert headers["cache-control"] == "no-store" and headers["referrer-policy"] == "no-referrer"
    assert "You are unsubscribed" in body
    assert suppressions(settings) == [(READER, "one-click")]
    # Idempotent: the same POST again (mail clients retry) answers the same and adds nothing.
    again = request(url, "POST", "List-Unsubscribe=One-Click", ONE_CLICK)
    assert again[0] == 200 and suppressions(settings) == [(READER, "one-click")]


def test_a_get_shows_the_page_and_never_unsubscribes(settings, server):
    url = f"{server.url}/unsubscribe?token={token_for(settings, READER)}"
    for method in ("GET", "HEAD", "GET"):  # link scanners fetch every URL, some more than once
        status, headers, body = request(url, method)
        assert status == 200 and "set-cookie" not in headers
    status, headers, body = request(url)
    assert '<html lang="en">' in body and READER in body
    assert '<form method="post">' in body and '<button type="submit">Unsubscribe</button>' in body
    assert "#1d3557" in body  # [colors] brand
    assert suppressions(settings) == []


def test_the_page_form_post_then_resubscribe(settings, server):
    url = f"{server.url}/unsubscribe?token={token_for(settings, READER)}"
    status, _, body = request(url, "POST", "action=unsubscribe", ONE_CLICK)
    assert status == 200 and "I clicked by mistake — resubscribe" in body and 'value="resubscribe"' in body
    assert suppressions(settings) == [(READER, "web")]
    status, _, body = request(url, "POST", "action=resubscribe", ONE_CLICK)
    assert status == 200 and "You are subscribed again" in body
    assert suppressions(settings) == []
    # Resubscribing twice is as harmless as unsubscribing twice.
    assert request(url, "POST", "action=resubscribe", ONE_CLICK)[0] == 200


@pytest.mark.parametrize("source", ["bounce", "complaint", "manual", "import:list.csv"])
def test_resubscribe_never_removes_a_suppression_the_reader_did_not_make(settings, server, source):
    with Ledger.for_settings(settings) as ledger:
        ledger.suppress(READER, "hard bounce", source=source)
    url = f"{server.url}/unsubscribe?token={token_for(settings, READER)}"
    status, _, body = request(url, "POST", "action=resubscribe", ONE_CLICK)
    assert status == 200 and "We could not resubscribe this address here" in body
    assert "bounce" not in body.lower().replace("could not be delivered", "")
    assert suppressions(settings) == [(READER, source)]


def _tampered(token: str) -> str:
    kid, nl, address, mac = token.split(".")
    return ".".join((kid, nl, address, ("A" if mac[0] != "A" else "B") + mac[1:]))


def bad_tokens(settings) -> dict[str, str]:
    good = token_for(settings, READER)
    other = token_for(settings, "mallory@example.net").split(".")
    kid, nl, _, mac = good.split(".")
    return {
        "altered signature": _tampered(good),
        "address swapped": ".".join((kid, nl, other[2], mac)),
        "other newsletter": KeyRing.parse("k1:" + "Zq8vN2xW5rT0yU4iO7pL1kJ9hG3fD6sA").sign("other.example.org", READER),
        "development key": KeyRing([(DEV_KID, DEV_SECRET)]).sign(newsletter_identity(settings).newsletter_id, READER),
        "garbage": "not-a-token",
        "truncated": good[: len(good) // 2],
        "huge": "a." * 3000,
    }


def test_bad_tokens_get_a_clear_400_page_and_change_nothing(settings, server):
    for name, token in bad_tokens(settings).items():
        for method in ("GET", "POST"):
            status, headers, body = request(f"{server.url}/unsubscribe?token={token}", method,
                                            "List-Unsubscribe=One-Click" if method == "POST" else None, ONE_CLICK)
            assert status == 400, (name, method, status)
            assert "This unsubscribe link does not work" in body, name
            assert "Traceback" not in body and READER not in body and "mallory" not in body, name
            assert "set-cookie" not in headers and "location" not in headers
    assert suppressions(settings) == []


def test_the_answer_does_not_tell_whether_an_address_is_on_the_list(settings, server):
    with Ledger.for_settings(settings) as ledger:
        ledger.suppress("already@example.net", "unsubscribed", source="one-click")
    answers = []
    for email in ("already@example.net", "never@example.net"):
        url = f"{server.url}/unsubscribe?token={token_for(settings, email)}"
        status, _, body = request(url, "POST", "List-Unsubscribe=One-Click", ONE_CLICK)
        answers.append((status, body.replace(email, "EMAIL")))
    assert answers[0] == answers[1]


def test_no_token_is_a_page_that_says_where_the_link_is(settings, server):
    status, _, body = request(f"{server.url}/unsubscribe")
    assert status == 200 and "Use the unsubscribe link at the bottom of the email" in body
    assert "unsubscribe@example.org" in body  # [unsubscribe] mailto
    assert request(f"{server.url}/unsubscribe", "POST", "List-Unsubscribe=One-Click", ONE_CLICK)[0] == 400


def test_the_pages_speak_the_newsletters_language(project, monkeypatch):
    from digest.config import load_settings

    toml = project / "digest.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('language = "en"', 'language = "nl"'), encoding="utf-8")
    settings = load_settings(toml)
    with running_server(settings, monkeypatch) as srv:
        status, _, body = request(f"{srv.url}/unsubscribe?token={token_for(settings, READER)}")
    assert status == 200 and '<html lang="nl">' in body and "Afmelden voor Innovation Hub News?" in body


def test_serve_refuses_to_start_without_the_signing_keys(settings):
    from digest.web.server import start_server

    with pytest.raises(ConfigError, match="DIGEST_UNSUBSCRIBE_KEYS is not set"):
        start_server(settings, port=0)


def test_a_post_lands_between_two_claims_of_a_running_send(settings, server):
    """The claim leaves out an address unsubscribed after the send started: no window."""
    with Ledger.for_settings(settings) as ledger:
        send = ledger.create_send("s", content_fp="c", list_fp="l", settings_fp="x", list_path="list.csv",
                                  subject="S", recipients=[(f"r{i}@example.net", f"r{i}@example.net", "", {}, (), i)
                                                           for i in range(6)])
        first = ledger.claim(send.id, 2)
        url = f"{server.url}/unsubscribe?token={token_for(settings, 'r3@example.net')}"
        assert request(url, "POST", "List-Unsubscribe=One-Click", ONE_CLICK)[0] == 200
        rest = ledger.claim(send.id, 10)
        assert [r.email for r in first] == ["r0@example.net", "r1@example.net"]
        assert [r.email for r in rest] == ["r2@example.net", "r4@example.net", "r5@example.net"]
        skipped = ledger.recipients(send.id, ("skipped",))
        assert [(r.email, r.last_error) for r in skipped] == [("r3@example.net", "suppressed: unsubscribed")]
