"""The smtp transport against a real aiosmtpd server on 127.0.0.1 (scripted replies, TLS, proxies)."""

from __future__ import annotations

from dataclasses import replace

import random
import smtplib
import socket
import ssl
import time
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from digest.config import load_settings
from digest.errors import (ConfigError, PermanentTransportError, TransientTransportError,
                           TransportAuthError)
from digest.transports import transport_class
from digest.outgoing import OutgoingMessage
from digest.transports.base import Status
from digest.transports.smtp import SMTPTransport
from digest.transports.smtp_session import dot_stuff, envelope_address, should_suppress
from tests.helpers.smtp_server import DROP, HANG

SENDER = "news@example.org"


def settings_for(tmp_path: Path, **smtp):
    """Default settings rooted in tmp_path with an [smtp] table."""
    (tmp_path / "digest.toml").write_text("", encoding="utf-8")
    settings = load_settings(tmp_path / "digest.toml", env={})
    settings.transports["smtp"] = smtp
    return settings


def transport(tmp_path, server=None, *, connections=1, **overrides) -> SMTPTransport:
    table = server.smtp_settings(**overrides) if server is not None else overrides
    return SMTPTransport(settings_for(tmp_path, **table), connections=connections)


def message(i: int, to: str | None = None, *, body: str | None = None, utf8: bool = False) -> OutgoingMessage:
    """A small CRLF message for recipient number i."""
    to = to or f"reader{i}@example.net"
    em = EmailMessage(policy=policy.SMTPUTF8 if utf8 else policy.SMTP)
    em["From"] = f"News <{SENDER}>"
    em["To"] = to
    em["Subject"] = f"Issue for {i}"
    em["Message-ID"] = f"<{i}.test@example.org>"
    em.set_content(body or f"Hello reader {i}.\n.A line that starts with a dot.\nmarker-{i}-end\n")
    return OutgoingMessage(recipient_id=i, to_email=to, to_name="", from_addr=f"News <{SENDER}>",
                           envelope_from=SENDER, reply_to=None, subject=em["Subject"], html="",
                           text="", message_id=em["Message-ID"], mime=em.as_bytes())


def statuses(results):
    return [r.status for r in results]


def test_every_message_delivered_once_with_its_envelope(tmp_path, smtp_server):
    msgs = [message(i) for i in range(1, 6)]
    with transport(tmp_path, smtp_server) as t:
        results = t.send_batch(msgs)
    assert statuses(results) == [Status.SENT] * 5
    assert [r.recipient_id for r in results] == [1, 2, 3, 4, 5]
    assert [r.provider_id for r in results] == [f"2.0.0 Ok: queued as Q{n:05d}" for n in range(1, 6)]
    assert len(smtp_server.deliveries) == 5
    for msg, got in zip(msgs, smtp_server.deliveries):
        assert got.mail_from == SENDER
        assert got.rcpt_tos == [msg.to_email]
        assert got.data == msg.mime  # byte for byte, dot-stuffing undone, CRLF kept
        assert not got.smtputf8
    assert smtp_server.connections == 1  # one connection reused


def test_messages_with_and_without_lines_starting_with_a_dot_arrive_byte_for_byte(tmp_path, smtp_server):
    # DATA stuffs line-leading dots itself (dot_stuff); the server must get back exactly what was built.
    plain = message(1, body="No line here starts with a dot.\nSecond line.\n")
    dotted = message(2, body=".starts with a dot\n..two dots\n.\nend\n")
    no_crlf_end = replace(message(3, body="ends without a line break"),
                          mime=message(3, body="ends without a line break").mime.rstrip(b"\r\n"))
    assert b"\n." not in plain.mime and b"\n." in dotted.mime
    with transport(tmp_path, smtp_server) as t:
        assert statuses(t.send_batch([plain, dotted, no_crlf_end])) == [Status.SENT] * 3
    got = {d.rcpt_tos[0]: d.data for d in smtp_server.deliveries}
    assert got[plain.to_email] == plain.mime
    assert got[dotted.to_email] == dotted.mime
    assert got[no_crlf_end.to_email] == no_crlf_end.mime + b"\r\n"


def _smtplib_data_body(data: bytes) -> bytes:
    # What smtplib.SMTP.data() sends for bytes (its regex, its terminator rule).
    body = smtplib._quote_periods(data)
    if body[-2:] != b"\r\n":
        body += b"\r\n"
    return body + b".\r\n"


@pytest.mark.parametrize("data", [
    b"", b".", b"..", b".\r\n", b"a\r\n.b\r\n", b"a\n.b", b"a\r\n..\r\n.\r\n", b"x\r", b"x\n",
    b"\r\n.\r\n", b".a.b\n\n..\r\n.", b"no dots at all\r\n",
])
def test_dot_stuff_sends_what_smtplib_would(data):
    assert dot_stuff(data) == _smtplib_data_body(data)


def test_dot_stuff_matches_smtplib_on_random_bytes():
    rng = random.Random(4)
    for _ in range(5000):
        data = bytes(rng.choice(b".\r\na") for _ in range(rng.randint(0, 16)))
        assert dot_stuff(data) == _smtplib_data_body(data), data


def test_describe_and_default_ports(tmp_path, smtp_server):
    assert transport(tmp_path, smtp_server).describe() == f"smtp://127.0.0.1:{smtp_server.port} (none)"
    assert transport(tmp_path, host="mail.example.org", security="tls").describe() == \
        "smtp://mail.example.org:465 (tls)"
    assert transport(tmp_path).describe() == "smtp://localhost:587 (starttls)"
    assert transport_class("smtp") is SMTPTransport


def test_bad_settings_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"digest.toml \[smtp\] security = 'ssl': expected 'starttls', 'tls' or 'none'"):
        transport(tmp_path, security="ssl")
    with pytest.raises(ConfigError, match=r"digest.toml \[smtp\] ca_file = 'nope.pem': .*nope.pem does not exist"):
        transport(tmp_path, ca_file="nope.pem")
    with pytest.raises(ConfigError, match=r"unknown setting 'verify_tls'"):
        transport(tmp_path, verify_tls=False)


def test_421_mid_run_reconnects_and_loses_nobody(tmp_path, smtp_server):
    msgs = [message(i) for i in range(1, 6)]
    smtp_server.script.on("DATA", msgs[2].to_email, "421 4.3.2 Service shutting down")
    with transport(tmp_path, smtp_server) as t:
        results = t.send_batch(msgs)
    assert statuses(results) == [Status.SENT] * 5
    assert smtp_server.recipients() == {m.to_email: 1 for m in msgs}
    assert smtp_server.connections == 2


def test_server_limit_per_connection_reconnects(tmp_path, smtp_server):
    smtp_server.script.max_per_connection = 2
    msgs = [message(i) for i in range(1, 8)]
    with transport(tmp_path, smtp_server) as t:
        results = t.send_batch(msgs)
    assert statuses(results) == [Status.SENT] * 7
    assert smtp_server.recipients() == {m.to_email: 1 for m in msgs}
    assert smtp_server.connections == 4


def test_451_greylisting_is_deferred_then_accepted_on_retry(tmp_path, smtp_server):
    msgs = [message(i) for i in range(1, 4)]
    smtp_server.script.on("RCPT", msgs[1].to_email, "451 4.7.1 Greylisted, please try again later")
    with transport(tmp_path, smtp_server) as t:
        first = t.send_batch(msgs)
        assert statuses(first) == [Status.SENT, Status.DEFERRED, Status.SENT]
        assert first[1].code == "451"
        assert "Greylisted" in first[1].reason and "RCPT TO" in first[1].reason
        assert not first[1].suppress
        retry = t.send_batch([msgs[1]])  # what the send loop does later
    assert statuses(retry) == [Status.SENT]
    assert smtp_server.recipients() == {m.to_email: 1 for m in msgs}
    assert smtp_server.connections == 1  # RSET kept the session usable


def test_550_fails_only_that_recipient_and_suppresses_unknown_user(tmp_path, smtp_server):
    msgs = [message(i) for i in range(1, 5)]
    smtp_server.script.on("RCPT", msgs[1].to_email,
                          "550 5.1.1 <reader2@example.net>: Recipient address rejected: User unknown")
    smtp_server.script.on("DATA", msgs[2].to_email, "554 5.7.1 Message rejected as spam")
    with transport(tmp_path, smtp_server) as t:
        results = t.send_batch(msgs)
    assert statuses(results) == [Status.SENT, Status.FAILED, Status.FAILED, Status.SENT]
    assert (results[1].code, results[1].suppress) == ("550", True)
    assert "5.1.1" in results[1].reason and f"127.0.0.1:{smtp_server.port}" in results[1].reason
    assert (results[2].code, results[2].suppress) == ("554", False)
    assert "at DATA" in results[2].reason
    assert smtp_server.recipients() == {msgs[0].to_email: 1, msgs[3].to_email: 1}
    assert [c for _, c, *_ in smtp_server.log].count("RSET") == 2
    assert smtp_server.connections == 1


def test_sender_refused_fails_without_suppressing(tmp_path, smtp_server):
    smtp_server.script.on("MAIL", SENDER, "553 5.1.8 Sender address rejected: Domain not found")
    with transport(tmp_path, smtp_server) as t:
        results = t.send_batch([message(1), message(2)])
    assert statuses(results) == [Status.FAILED, Status.SENT]
    assert results[0].suppress is False and "at MAIL FROM" in results[0].reason
    assert results[0].retryable is True  # not the reader's fault: `digest retry` may send it again


def test_recipient_refused_is_not_retryable(tmp_path, smtp_server):
    smtp_server.script.on("RCPT", message(1).to_email, "550 5.7.1 Rejected by policy")
    with transport(tmp_path, smtp_server) as t:
        [result] = t.send_batch([message(1)])
    assert (result.status, result.suppress, result.retryable) == (Status.FAILED, False, False)


@pytest.mark.parametrize("code, text, expected", [
    (550, b"5.1.1 User unknown", True),
    (550, b"5.1.10 Recipient address rejected: null MX", True),
    (553, b"5.1.3 Bad recipient address syntax", True),
    (550, b"Requested action not taken: no such user here", True),
    (553, b"5.1.8 Sender domain not found", False),   # about our sender, not the reader
    (552, b"5.2.2 Mailbox full", False),
    (550, b"5.7.1 Rejected by policy", False),
    (450, b"4.1.1 User unknown (try later)", False),  # temporary: never suppress
])
def test_should_suppress(code, text, expected):
    assert should_suppress(code, text) is expected


def test_drop_in_the_middle_of_data_is_retried_on_a_fresh_connection(tmp_path, smtp_server, tcp_proxy_factory):
    proxy = tcp_proxy_factory(smtp_server.host, smtp_server.port)
    proxy.cut_on(b"marker-3-end")  # cuts inside message 3's DATA, before the final dot
    msgs = [message(i) for i in range(1, 6)]
    with transport(tmp_path, smtp_server, port=proxy.port) as t:
        results = t.send_batch(msgs)
    assert proxy.cuts == 1
    assert statuses(results) == [Status.SENT] * 5
    assert smtp_server.recipients() == {m.to_email: 1 for m in msgs}
    assert smtp_server.connections == 2


def test_drop_after_data_before_the_reply_is_retried(tmp_path, smtp_server):
    msgs = [message(i) for i in range(1, 4)]
    smtp_server.script.on("DATA", msgs[1].to_email, DROP)
    with transport(tmp_path, smtp_server) as t:
        results = t.send_batch(msgs)
    assert statuses(results) == [Status.SENT] * 3
    assert smtp_server.recipients() == {m.to_email: 1 for m in msgs}


def test_reconnect_fails_defers_the_rest_then_raises(tmp_path, smtp_server, tcp_proxy_factory):
    proxy = tcp_proxy_factory(smtp_server.host, smtp_server.port)
    proxy.cut_on(b"marker-2-end", then_refuse=True)
    msgs = [message(i) for i in range(1, 5)]
    with transport(tmp_path, smtp_server, port=proxy.port) as t:
        results = t.send_batch(msgs)
        assert statuses(results) == [Status.SENT] + [Status.DEFERRED] * 3
        assert results[1].reason.startswith("not sent: cannot talk to SMTP server 127.0.0.1:")
        assert results[2].reason.startswith("not attempted: ")
        # Next batch: nothing can be attempted at all → the whole batch is a transient error.
        with pytest.raises(TransientTransportError, match=rf"127\.0\.0\.1:{proxy.port}"):
            t.send_batch(msgs[1:])
    assert smtp_server.recipients() == {msgs[0].to_email: 1}


def test_server_that_never_answers_times_out(tmp_path, silent_server):
    t = transport(tmp_path, host=silent_server.host, port=silent_server.port, security="none", timeout=1.0)
    start = time.monotonic()
    with pytest.raises(TransientTransportError) as info:
        t.open()
    elapsed = time.monotonic() - start
    assert 0.9 < elapsed < 3.0
    assert f"cannot talk to SMTP server 127.0.0.1:{silent_server.port}: no reply within 1 s" in str(info.value)


def test_reply_that_never_comes_after_data_is_retried_once(tmp_path, smtp_server):
    msgs = [message(i) for i in range(1, 4)]
    smtp_server.script.on("DATA", msgs[1].to_email, HANG)
    with transport(tmp_path, smtp_server, timeout=0.5) as t:
        results = t.send_batch(msgs)
    assert statuses(results) == [Status.SENT] * 3
    assert smtp_server.recipients() == {m.to_email: 1 for m in msgs}


def test_server_that_keeps_hanging_defers_rest_without_waiting_for_each(tmp_path, smtp_server):
    msgs = [message(i) for i in range(1, 6)]
    smtp_server.script.on("DATA", msgs[1].to_email, HANG, always=True)
    start = time.monotonic()
    with transport(tmp_path, smtp_server, timeout=0.5) as t:
        results = t.send_batch(msgs)
    elapsed = time.monotonic() - start
    assert statuses(results) == [Status.SENT] + [Status.DEFERRED] * 4
    assert "no reply within 0.5 s" in results[1].reason
    assert results[4].reason.startswith("not attempted")
    assert elapsed < 3.0  # two timeouts, not one per remaining message


def test_wrong_password_raises_auth_error(tmp_path, smtp_server_factory, tls_cert, monkeypatch):
    server = smtp_server_factory(tls="starttls", cert=tls_cert, auth=("ann", "right"))
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "wrong")
    t = transport(tmp_path, server, username="ann")
    with pytest.raises(TransportAuthError) as info:
        t.open()
    text = str(info.value)
    assert f"SMTP server 127.0.0.1:{server.port} refused the login of user 'ann': 535" in text
    assert "$DIGEST_SMTP_PASSWORD" in text
    assert server.deliveries == []


def test_login_over_starttls_with_the_right_password(tmp_path, smtp_server_factory, tls_cert, monkeypatch):
    server = smtp_server_factory(tls="starttls", cert=tls_cert, auth=("ann", "right"))
    monkeypatch.setenv("MY_SMTP_PW", "right")
    with transport(tmp_path, server, username="ann", password_env="MY_SMTP_PW") as t:
        assert statuses(t.send_batch([message(1)])) == [Status.SENT]
    got = server.deliveries[0]
    assert (got.tls, got.auth_user) == (True, "ann")


def test_missing_password_variable_is_a_config_error(tmp_path, smtp_server_factory, tls_cert, monkeypatch):
    server = smtp_server_factory(tls="starttls", cert=tls_cert, auth=("ann", "right"))
    monkeypatch.delenv("DIGEST_SMTP_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="environment variable DIGEST_SMTP_PASSWORD is not set"):
        transport(tmp_path, server, username="ann").open()


def test_untrusted_certificate_is_refused_by_default(tmp_path, smtp_server_factory, tls_cert):
    server = smtp_server_factory(tls="starttls", cert=tls_cert)
    table = server.smtp_settings()
    del table["ca_file"]
    t = SMTPTransport(settings_for(tmp_path, **table))
    with pytest.raises(PermanentTransportError) as info:
        t.open()
    assert f"SMTP server 127.0.0.1:{server.port}: TLS certificate not trusted (self-signed certificate)" \
        in info.value.message
    assert "ca_file" in info.value.hint
    assert server.deliveries == []


def test_starttls_accepted_with_ca_file(tmp_path, smtp_server_factory, tls_cert):
    server = smtp_server_factory(tls="starttls", cert=tls_cert)
    with transport(tmp_path, server) as t:  # smtp_settings() sets ca_file to the test CA
        assert statuses(t.send_batch([message(1)])) == [Status.SENT]
    assert server.deliveries[0].tls is True


def test_certificate_for_another_name_is_refused_even_with_ca_file(tmp_path, smtp_server_factory, tls_cert_factory):
    cert = tls_cert_factory("mail.example.org")
    server = smtp_server_factory(tls="starttls", cert=cert)
    with pytest.raises(PermanentTransportError) as info:
        transport(tmp_path, server).open()
    assert "TLS certificate not trusted (IP address mismatch" in info.value.message
    assert "set [smtp] host to a name on the server's certificate" in info.value.hint


def test_implicit_tls(tmp_path, smtp_server_factory, tls_cert):
    server = smtp_server_factory(tls="implicit", cert=tls_cert)
    with transport(tmp_path, server) as t:
        assert t.describe().endswith("(tls)")
        assert statuses(t.send_batch([message(1), message(2)])) == [Status.SENT] * 2
    assert [d.tls for d in server.deliveries] == [True, True]


def test_tls_against_a_plain_port_is_a_clear_error(tmp_path, smtp_server):
    with pytest.raises(PermanentTransportError, match=rf"127\.0\.0\.1:{smtp_server.port}: TLS handshake failed"):
        transport(tmp_path, smtp_server, security="tls").open()


def test_starttls_required_but_not_offered(tmp_path, smtp_server):
    with pytest.raises(PermanentTransportError, match=rf"127\.0\.0\.1:{smtp_server.port} does not offer STARTTLS"):
        transport(tmp_path, smtp_server, security="starttls").open()


def test_no_password_over_plaintext_unless_allowed(tmp_path, smtp_server_factory, monkeypatch):
    server = smtp_server_factory(auth=("ann", "right"), auth_require_tls=False)
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "right")
    with pytest.raises(ConfigError, match=r"username is set but security = 'none' would send the password "
                                          r"unencrypted to 127\.0\.0\.1:\d+"):
        transport(tmp_path, server, username="ann")
    with transport(tmp_path, server, username="ann", allow_insecure_auth=True) as t:
        assert statuses(t.send_batch([message(1)])) == [Status.SENT]
    assert (server.deliveries[0].tls, server.deliveries[0].auth_user) == (False, "ann")


def test_smtputf8_used_when_offered(tmp_path, smtp_server):
    msg = message(1, "josé@example.net", utf8=True)
    with transport(tmp_path, smtp_server) as t:
        results = t.send_batch([msg, message(2)])
    assert statuses(results) == [Status.SENT, Status.SENT]
    first, second = smtp_server.deliveries
    assert (first.rcpt_tos, first.smtputf8, first.data) == (["josé@example.net"], True, msg.mime)
    assert second.smtputf8 is False


def test_smtputf8_not_offered_fails_only_that_recipient(tmp_path, smtp_server_factory):
    server = smtp_server_factory(smtputf8=False)
    msgs = [message(1), message(2, "josé@example.net", utf8=True), message(3)]
    with transport(tmp_path, server) as t:
        results = t.send_batch(msgs)
    assert statuses(results) == [Status.SENT, Status.FAILED, Status.SENT]
    assert results[1].reason == f"needs SMTPUTF8; server 127.0.0.1:{server.port} does not offer it"
    assert results[1].suppress is False
    assert server.recipients() == {msgs[0].to_email: 1, msgs[2].to_email: 1}


def test_8bit_body_is_announced_with_body_8bitmime(tmp_path, smtp_server):
    msg = message(1)
    em = EmailMessage(policy=policy.SMTP)
    em["To"] = msg.to_email
    em.set_content("Grüße aus dem Hub\n", cte="8bit")
    msg = OutgoingMessage(**{**msg.__dict__, "mime": em.as_bytes()})
    with transport(tmp_path, smtp_server) as t:
        assert statuses(t.send_batch([msg, message(2)])) == [Status.SENT, Status.SENT]
    first, second = smtp_server.deliveries
    assert "BODY=8BITMIME" in first.mail_options and first.data == msg.mime and not first.smtputf8
    assert "BODY=8BITMIME" not in second.mail_options


def test_idn_domain_needs_no_smtputf8(tmp_path, smtp_server_factory):
    server = smtp_server_factory(smtputf8=False)
    assert envelope_address("ann@bücher.de") == "ann@xn--bcher-kva.de"
    msg = message(1, "ann@xn--bcher-kva.de")
    msg = OutgoingMessage(**{**msg.__dict__, "to_email": "ann@bücher.de"})
    with transport(tmp_path, server) as t:
        assert statuses(t.send_batch([msg])) == [Status.SENT]
    assert server.deliveries[0].rcpt_tos == ["ann@xn--bcher-kva.de"]


def test_one_transport_is_one_connection(tmp_path, smtp_server):
    # Parallel connections are parallel transports, one per send-loop thread (see test_send_cli).
    with pytest.raises(ValueError, match="one connection"):
        transport(tmp_path, smtp_server, connections=2)


def test_bad_ca_file_is_a_config_error(tmp_path, smtp_server_factory, tls_cert):
    server = smtp_server_factory(tls="starttls", cert=tls_cert)
    (tmp_path / "ca.pem").write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"\[smtp\] ca_file = 'ca.pem': .*ca.pem is not a PEM certificate file"):
        transport(tmp_path, server, ca_file="ca.pem").open()


def test_close_is_idempotent_and_quits(tmp_path, smtp_server):
    t = transport(tmp_path, smtp_server)
    t.open()
    t.send_batch([message(1)])
    t.close()
    t.close()
    assert t._conn is None


@pytest.mark.parametrize("tls", ["starttls", "implicit", None])
def test_the_connection_sends_without_nagle_delay_in_every_mode(tmp_path, smtp_server_factory, tls_cert, tls):
    # With Nagle's algorithm the last TLS record of each DATA waits for the server's delayed ACK
    # (~40 ms a message on a fast link); TCP_NODELAY hands every record to the network at once.
    server = smtp_server_factory(tls=tls, cert=tls_cert if tls else None)
    t = transport(tmp_path, server)
    t.open()
    try:
        sock = t._conn.smtp.sock
        assert isinstance(sock, ssl.SSLSocket) == (tls is not None)  # really TLS when asked for
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert statuses(t.send_batch([message(1)])) == [Status.SENT]
    finally:
        t.close()
