"""`digest bounces fetch` against a local IMAP server over TLS holding real-world bounce formats
(tests/data/bounces/): RFC 3464's own example, Postfix, Office 365, Gmail, a qmail text bounce."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.errors import DigestError
from digest.feedback.bounce_mail import read_bounce
from digest.feedback.fetch import fetch_bounces
from digest.store.ledger import Ledger
from tests.helpers.feedback import sent_send
from tests.helpers.imap_server import IMAPServer
from tests.helpers.send import run

BOUNCES = Path(__file__).resolve().parents[1] / "data" / "bounces"
SLUG = "2023-12-learning-innovation-highlights"
USER, PASSWORD = "bounces@example.org", "s3cret pass"
READERS = ["louisl@larry.slip.umd.edu", "nobody@example.net", "ghost@contoso.com", "missing.reader@gmail.com",
           "gone@example.com", "ann@example.net"]
SAMPLES = ["rfc3464", "postfix", "office365", "gmail", "qmail", "not-a-bounce"]


def sample(name: str) -> bytes:
    return (BOUNCES / f"{name}.eml").read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@pytest.fixture
def imap(tls_cert):
    server = IMAPServer(tls_cert.cert, tls_cert.key, user=USER, password=PASSWORD).start()
    yield server
    server.stop()


def point_at(settings, monkeypatch, server: IMAPServer, cert) -> None:
    """Settings for the local server (the CA file trusts its self-signed certificate)."""
    settings.send.bounce_address = USER
    settings.feedback.imap_host = "127.0.0.1"
    settings.feedback.imap_port = server.port
    settings.feedback.imap_ca_file = str(cert.cert)
    monkeypatch.setenv("DIGEST_IMAP_PASSWORD", PASSWORD)


def suppressed(settings) -> dict[str, str]:
    with Ledger.for_settings(settings, readonly=True) as ledger:
        return {e: r for e, r, _s, _c in ledger.iter_suppressions()}


def events(settings) -> list[tuple]:
    with Ledger.for_settings(settings, readonly=True) as ledger:
        return ledger._read("SELECT email, event, permanent, send_id IS NOT NULL, source FROM feedback_events "
                            "ORDER BY email")


@pytest.mark.parametrize("move", [True, False], ids=["MOVE", "COPY+EXPUNGE"])
def test_bounces_are_recorded_suppressed_and_moved(settings, monkeypatch, imap, tls_cert, move):
    imap.move = move
    sent_send(settings, SLUG, [(r, None) for r in READERS])
    for name in SAMPLES:
        imap.add("INBOX", sample(name))
    point_at(settings, monkeypatch, imap, tls_cert)

    report = fetch_bounces(settings, timeout=5)

    assert (report.handled, report.not_bounces, report.hard, report.soft) == (5, 1, 4, 1)
    assert report.recorded.new == 5 and report.recorded.matched == 5
    assert report.by_address == ["gone@example.com"]  # the qmail bounce quotes no Message-ID
    reasons = suppressed(settings)
    assert set(reasons) == {"nobody@example.net", "ghost@contoso.com", "missing.reader@gmail.com", "gone@example.com"}
    assert reasons["nobody@example.net"].startswith("bounce: 5.1.1 smtp; 550 5.1.1 <nobody@example.net>")
    assert "RESOLVER.ADR.RecipientNotFound" in reasons["ghost@contoso.com"]
    assert "550-5.1.1 The email account" in reasons["missing.reader@gmail.com"]
    # RFC 3464's example: Action failed but Status 4.0.0, a soft bounce: counted, not suppressed
    assert ("louisl@larry.slip.umd.edu", "bounced", 0, 1, "bounce-mail") in events(settings)
    assert [m.data for m in imap.folders["INBOX"]] == [sample("not-a-bounce")]
    assert "\\Seen" not in imap.folders["INBOX"][0].flags
    assert len(imap.folders["digest-processed"]) == 5
    assert ("UID MOVE" in imap.log) is move and ("UID EXPUNGE" in imap.log) is not move


def test_a_second_run_records_nothing_new(settings, monkeypatch, imap, tls_cert):
    sent_send(settings, SLUG, [(r, None) for r in READERS])
    point_at(settings, monkeypatch, imap, tls_cert)
    for name in ("postfix", "gmail"):
        imap.add("INBOX", sample(name))
    first = fetch_bounces(settings, timeout=5)
    # the same bounces again, as after a run that recorded them but was stopped before moving them
    for name in ("postfix", "gmail"):
        imap.add("INBOX", sample(name))
    again = fetch_bounces(settings, timeout=5)
    third = fetch_bounces(settings, timeout=5)
    assert (first.recorded.new, len(first.recorded.suppressed)) == (2, 2)
    assert (again.recorded.new, again.recorded.replayed, again.recorded.suppressed) == (0, 2, [])
    assert (third.handled, third.recorded.new) == (0, 0)
    assert len(events(settings)) == 2 and len(imap.folders["digest-processed"]) == 4


def test_the_cli_reports_and_a_wrong_password_names_the_server(project, capsys, monkeypatch, imap, tls_cert):
    for key, value in {"SEND_BOUNCE_ADDRESS": USER, "FEEDBACK_IMAP_HOST": "127.0.0.1",
                       "FEEDBACK_IMAP_PORT": str(imap.port)}.items():
        monkeypatch.setenv(f"DIGEST_{key}", value)
    imap.add("INBOX", sample("office365"))
    monkeypatch.setenv("DIGEST_IMAP_PASSWORD", "wrong")
    code, _out, err = run(capsys, "bounces", "fetch", "--ca-file", str(tls_cert.cert), "--timeout", "5")
    assert code == 1 and f"IMAP server 127.0.0.1:{imap.port} refused the login of {USER}" in err
    monkeypatch.setenv("DIGEST_IMAP_PASSWORD", PASSWORD)
    code, out, err = run(capsys, "bounces", "fetch", "--ca-file", str(tls_cert.cert), "--timeout", "5")
    assert code == 0, err
    assert "1 bounces moved to digest-processed, 0 other messages left in place" in out
    assert "suppressed ghost@contoso.com: bounce: 5.1.10" in out


def test_an_untrusted_certificate_is_refused_naming_the_server(settings, monkeypatch, imap, tls_cert):
    point_at(settings, monkeypatch, imap, tls_cert)
    settings.feedback.imap_ca_file = None  # the system's CAs do not know the self-signed certificate
    imap.add("INBOX", sample("gmail"))
    with pytest.raises(DigestError, match=f"IMAP server 127.0.0.1:{imap.port}: TLS certificate not trusted") as exc:
        fetch_bounces(settings, timeout=5)
    assert "imap_ca_file" in exc.value.hint
    assert len(imap.folders["INBOX"]) == 1


def test_missing_settings_say_what_to_set(settings, monkeypatch):
    with pytest.raises(DigestError, match="imap_host is not set"):
        fetch_bounces(settings)
    settings.feedback.imap_host = "imap.example.org"
    settings.send.bounce_address = None
    with pytest.raises(DigestError, match="neither imap_user nor \\[send\\] bounce_address"):
        fetch_bounces(settings)


def test_a_delay_warning_is_only_a_deferral():
    raw = sample("postfix").replace(b"Action: failed", b"Action: delayed").replace(b"Status: 5.1.1", b"Status: 4.4.1")
    (event,) = read_bounce(raw).events
    assert (event.event, event.permanent, event.suppresses) == ("deferred", False, False)


def test_a_send_uses_the_bounce_address_as_envelope_sender_and_its_bounce_comes_home(
        project, capsys, monkeypatch, smtp_server, imap, tls_cert):
    from tests.helpers.send import KEYS, write_list

    table = smtp_server.smtp_settings()
    with open(project / "digest.toml", "a", encoding="utf-8") as fh:
        fh.write("\n[smtp]\n" + "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in table.items()))
    for key, value in {"UNSUBSCRIBE_KEYS": KEYS, "SEND_TRANSPORT": "smtp", "PATHS_SUBSCRIBERS": "list.csv",
                       "SEND_BOUNCE_ADDRESS": USER, "FEEDBACK_IMAP_HOST": "127.0.0.1",
                       "FEEDBACK_IMAP_PORT": str(imap.port), "FEEDBACK_IMAP_CA_FILE": str(tls_cert.cert)}.items():
        monkeypatch.setenv(f"DIGEST_{key}", value)
    monkeypatch.setenv("DIGEST_IMAP_PASSWORD", PASSWORD)
    write_list(project / "list.csv", 3)
    code, out, err = run(capsys, "send", SLUG, "--yes")
    assert code == 0, out + err
    assert {d.mail_from for d in smtp_server.deliveries} == {USER}  # MAIL FROM:<bounces@example.org>
    first = smtp_server.deliveries[0]
    sent_id = first.data.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0]
    assert sent_id.startswith(f"<{SLUG}.".encode())
    # the receiving server bounces that very message, naming it by its Message-ID only
    bounce = sample("postfix").replace(b"nobody@example.net", first.rcpt_tos[0].encode())
    bounce = bounce.replace(b"<2023-12-learning-innovation-highlights.89abcdef0123456789abcdef@example.org>", sent_id)
    imap.add("INBOX", bounce)
    code, out, err = run(capsys, "bounces", "fetch")
    assert code == 0, err
    assert "1 events recorded (1 tied to a send)" in out and f"suppressed {first.rcpt_tos[0]}: bounce: 5.1.1" in out
    code, out, _ = run(capsys, "status", SLUG)
    assert code == 0 and "hard bounces  1  (33.33 % of sent)" in out
