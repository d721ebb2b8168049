"""The fast MIME builder parses back to what the EmailMessage way produces, and stays safe and legal."""

from __future__ import annotations

import email
import email.policy
import quopri
import smtplib
import socket
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from digest.delivery.mime import (MessageError, MimeSkeleton, build_mime, needs_smtputf8,
                            reference_mime)
from digest.outgoing import OutgoingMessage

NOW = 1_800_000_000  # fixed clock: both builders stamp the same Date
NOW_DT = datetime.fromtimestamp(NOW, timezone.utc)

HEADERS = (
    ("List-Unsubscribe", "<https://example.org/unsubscribe?token=k1.aW5ub3ZhdGlvbi1odWI.YW5uQGV4YW1wbGUub3Jn."
                         "Qk1ZsT1gPz8u2m4yq0x3aA>, <mailto:unsubscribe@example.org?subject=unsubscribe>"),
    ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    ("List-Id", "Innovation Hub News <innovation-hub.example.org>"),
)


def make(**kw) -> OutgoingMessage:
    base = dict(
        recipient_id=7, to_email="ann@example.org", to_name="Ann Smith",
        from_addr="Innovation Hub News <news@example.org>", envelope_from="bounces@example.org",
        reply_to=None, subject="Learning & Innovation Highlights 2023",
        html="<html><body><p>Hello Ann,</p><p>We raised $480,000.</p></body></html>\n",
        text="Hello Ann,\n\nWe raised $480,000.\n", message_id="<7.2023-12@example.org>",
        headers=HEADERS,
    )
    base.update(kw)
    return OutgoingMessage(**base)


def parse(raw: bytes):
    if not raw.isascii():  # SMTPUTF8 message: UTF-8 headers (the parser reads bytes as ASCII)
        return email.message_from_string(raw.decode("utf-8"), policy=email.policy.default)
    return email.message_from_bytes(raw, policy=email.policy.default)


def summary(raw: bytes) -> dict:
    """Decoded headers (boundary aside) and decoded bodies, for comparing two builders."""
    m = parse(raw)
    headers = []
    for name, value in m.items():
        if name.lower() == "content-type":
            assert value.content_type == "multipart/alternative"
            continue
        if name.lower() in ("to", "from", "reply-to"):
            value = [(a.display_name, a.addr_spec) for a in value.addresses]
        elif name.lower() == "date":
            value = value.datetime
        else:
            value = str(value)
        headers.append((name, value))
    parts = [(p.get_content_type(), p.get_content_charset(), p["Content-Transfer-Encoding"], p.get_content())
             for p in m.iter_parts()]
    # EmailMessage writes MIME-Version after the extra headers; build() before them: compare as sets.
    return {"headers": sorted(headers, key=lambda h: h[0]), "parts": parts, "defects": [type(d).__name__ for d in m.defects]}


def assert_wire_format(raw: bytes) -> None:
    """CRLF everywhere, no line over 998 bytes, header lines folded, QP lines ≤ 76, no lone-dot line."""
    assert raw.endswith(b"\r\n")
    assert b"\r" not in raw.replace(b"\r\n", b"") and b"\n" not in raw.replace(b"\r\n", b"")
    head, _, body = raw.partition(b"\r\n\r\n")
    for line in raw.split(b"\r\n"):
        assert len(line) <= 998
        assert line != b"."
    for line in head.split(b"\r\n"):
        # Over 78 only when the line is one word that cannot be folded (a long URL).
        word = line[1:] if line.startswith(b" ") else line.partition(b": ")[2]
        assert len(line) <= 78 or b" " not in word, line
    for line in body.split(b"\r\n"):
        assert len(line) <= 76, line


def fast(msg: OutgoingMessage) -> bytes:
    return MimeSkeleton(clock=lambda: NOW).build(msg)


LONG_HTML = "<table>" + "".join(
    f'<tr><td style="padding:0 16px;color:#222222;font-family:Helvetica,Arial">Row {i} — café = {i * 3}'
    f' <a href="https://example.org/a?b={i}&amp;c=d">link</a></td></tr>' for i in range(420)) + "</table>"

CASES = {
    "ascii": make(),
    "non-ascii names": make(to_name="Zoë Ångström", from_addr="Innovation Hub — Nieuws <news@example.org>",
                            reply_to="Équipe <team@example.org>"),
    "cjk name": make(to_name="王小明"),
    "quoted name": make(to_name='Smith, "Ann" J. \\ Jr.'),
    "emoji subject": make(subject="🎉 Highlights 2023 — 🌍 climate justice, inclusion & more ✨"),
    "very long subject": make(subject=" ".join(["Learning & Innovation Highlights 2023"] * 12)),
    "long subject without spaces": make(subject="x" * 2000),
    "long non-ascii subject": make(subject="Überblick über das Jahr " * 20),
    "single-line 60k html": make(html=("<p>" + "a" * 59_990 + "</p>")[:60_000]),
    "long table html": make(html=LONG_HTML),
    "dots and From": make(text=".\n.leading dot\nFrom the editor\n..\n. \nend.\n",
                          html=".\n<p>x</p>\nFrom here\n."),
    "trailing blanks": make(text="spaces   \ntab\t\n" + "y" * 75 + " \n" + "é" * 25 + "\t\nlast  ",
                            html="<p>x</p>   \n" + "z" * 75 + "\t"),
    "equals signs": make(text="a=b\n==\n=3D\n=\n" + "=" * 200, html='<td width="100%">=?utf-8?q?x?=</td>'),
    "dollars": make(subject="We raised $480,000 for $name", text="$480,000 ${x} $$", html="<b>$480,000</b>"),
    "idn domain": make(to_email="wang@bücher.de", to_name="王"),
    "crlf and cr bodies": make(text="one\r\ntwo\rthree\n", html="<p>a</p>\r\n<p>b</p>\r"),
    "empty name and reply-to": make(to_name="", reply_to="team@example.org"),
    "long name": make(to_name="Anna " * 30 + "Smith"),
    "mixed name": make(to_name="Zoë J. Smith-Ångström (Partos)"),
    "no extra headers": make(headers=()),
}


@pytest.mark.parametrize("case", list(CASES))
def test_fast_path_parses_back_like_the_email_message_way(case):
    msg = CASES[case]
    raw = fast(msg)
    assert_wire_format(raw)
    got, want = summary(raw), summary(reference_mime(msg, date=NOW_DT))
    assert got == want
    assert got["defects"] == []
    assert [n for n, _ in parse(raw).items()][:-1] == [
        "From", "To", *(["Reply-To"] if msg.reply_to else []), "Subject", "Date", "Message-ID",
        "MIME-Version", *(n for n, _ in msg.headers)]
    assert [p[:3] for p in got["parts"]] == [("text/plain", "utf-8", "quoted-printable"),
                                             ("text/html", "utf-8", "quoted-printable")]


def test_decoded_values_are_the_input():
    msg = CASES["emoji subject"]
    m = parse(fast(msg))
    assert str(m["Subject"]) == msg.subject
    assert m["To"].addresses[0].display_name == "Ann Smith"
    text, html = (p.get_content() for p in m.iter_parts())
    assert text.replace("\r\n", "\n") == msg.text
    assert html.replace("\r\n", "\n") == msg.html


def test_non_ascii_header_text_is_rfc2047_encoded():
    raw = fast(CASES["non-ascii names"])
    head = raw.partition(b"\r\n\r\n")[0]
    assert head.isascii()
    assert b"To: =?utf-8?b?Wm/DqyDDhW5nc3Ryw7Zt?= <ann@example.org>\r\n" in head  # B: shorter than Q here
    assert b"From: Innovation Hub =?utf-8?b?4oCU?= Nieuws <news@example.org>\r\n" in head
    assert not needs_smtputf8(raw)


def test_long_subject_is_folded_at_spaces_and_unfolds_to_the_same_text():
    msg = CASES["very long subject"]
    head = fast(msg).partition(b"\r\n\r\n")[0].decode()
    subject_lines = head.split("Subject: ", 1)[1].split("\r\nDate:")[0].split("\r\n")
    assert len(subject_lines) > 5
    assert all(line.startswith(" ") for line in subject_lines[1:])
    assert "=?" not in "".join(subject_lines)  # plain ASCII words stay readable
    assert "".join(subject_lines) == msg.subject


def test_idn_domain_goes_out_as_punycode():
    raw = fast(CASES["idn domain"])
    assert b"<wang@xn--bcher-kva.de>" in raw
    assert parse(raw)["To"].addresses[0].addr_spec == "wang@xn--bcher-kva.de"
    assert not needs_smtputf8(raw)


def test_non_ascii_local_part_gives_a_utf8_header_for_smtputf8():
    msg = make(to_email="zoë@bücher.de", to_name="Zoë")
    raw = fast(msg)
    assert needs_smtputf8(raw)
    assert "To: =?utf-8?q?Zo=C3=AB?= <zoë@bücher.de>\r\n".encode() in raw
    assert parse(raw)["To"].addresses[0].addr_spec == "zoë@bücher.de"
    assert summary(raw) == summary(reference_mime(msg, date=NOW_DT))


def test_quoted_printable_lines_that_end_in_a_blank_stay_within_76():
    # binascii.b2a_qp alone writes 78-character lines here; build() splits them.
    text = "\n" + "x" * 75 + " \n" + "=" * 24 + "x\t\n" + "é" * 12 + "x" * 3 + " \n"
    raw = fast(make(text=text))
    assert_wire_format(raw)
    body = raw.split(b"quoted-printable\r\n\r\n")[1].split(b"\r\n--")[0]
    assert quopri.decodestring(body).decode().replace("\r\n", "\n") == text


INJECTIONS = {
    "name": dict(to_name="Eve\r\nBcc: x@y"),
    "name lf only": dict(to_name="Eve\nBcc: x@y"),
    "subject": dict(subject="Hi\r\nBcc: x@y"),
    "subject cr only": dict(subject="Hi\rBcc: x@y\r\n\r\n<html>"),
    "reply-to": dict(reply_to="Team <team@example.org>\r\nBcc: x@y"),
    "message-id": dict(message_id="<1@example.org>\r\nBcc: x@y"),
    "extra header": dict(headers=(("List-Id", "News <news.example.org>\r\nBcc: x@y"),)),
    "nul": dict(subject="Hi\0\r\nBcc: x@y"),
    "encoded-word name": dict(to_name="=?utf-8?q?a=0D=0ABcc:_x@y?="),
    "encoded-word subject": dict(subject="=?utf-8?q?a=0D=0ABcc:_x@y?="),
    "encoded-word base64 name": dict(to_name="=?utf-8?b?YQ0KQmNjOiB4QHk=?= Smith"),
}


@pytest.mark.parametrize("case", list(INJECTIONS))
def test_header_injection_adds_no_header(case):
    raw = fast(make(**INJECTIONS[case]))
    assert_wire_format(raw)
    m = parse(raw)
    assert "Bcc" not in m
    assert b"\nBcc" not in raw
    assert [n for n, _ in m.items()].count("To") == 1
    for name, value in m.items():
        assert "\r" not in str(value) and "\n" not in str(value), name


def test_encoded_word_look_alikes_decode_as_the_literal_text():
    name = "=?utf-8?q?Caf=C3=A9_x@y?="
    m = parse(fast(make(to_name=name, subject="Re: " + name)))
    assert m["To"].addresses[0].display_name == name
    assert str(m["Subject"]) == "Re: " + name


def test_an_encoded_word_that_decodes_to_a_line_break_is_spelled_out_without_it():
    # The one header sanitiser (digest.text.header_safe), as for every API transport.
    name = "=?utf-8?q?a=0D=0ABcc:_x@y?="
    m = parse(fast(make(to_name=name, subject="Re: " + name)))
    assert m["To"].addresses[0].display_name == "aBcc: x@y"
    assert str(m["Subject"]) == "Re: aBcc: x@y"


def test_crlf_removed_from_values_not_replaced():
    m = parse(fast(make(to_name="Eve\r\nBcc: x@y", subject="Hi\r\n there")))
    assert m["To"].addresses[0].display_name == "EveBcc: x@y"
    assert str(m["Subject"]) == "Hi there"


def test_skeleton_encodes_static_headers_once_and_personalised_subjects_each_time():
    skeleton = MimeSkeleton.for_message(make(), clock=lambda: NOW)
    names = ["Ann", "Zoë", "王", "Bob"]
    raws = [skeleton.build(make(recipient_id=i, to_name=n, to_email=f"r{i}@example.org",
                                subject=f"{n}, your 2023 highlights",
                                message_id=f"<{i}@example.org>"))
            for i, n in enumerate(names)]
    for i, (n, raw) in enumerate(zip(names, raws)):
        m = parse(raw)
        assert str(m["Subject"]) == f"{n}, your 2023 highlights"
        assert m["To"].addresses[0] .display_name == n
        assert m["Message-ID"] == f"<{i}@example.org>"
        assert m.get_boundary() == skeleton.boundary
        assert summary(raw) == summary(reference_mime(make(
            recipient_id=i, to_name=n, to_email=f"r{i}@example.org", subject=f"{n}, your 2023 highlights",
            message_id=f"<{i}@example.org>"), date=NOW_DT))
    # The From line and static extra headers are byte-identical across recipients.
    heads = [r.partition(b"\r\n\r\n")[0].split(b"\r\n") for r in raws]
    assert len({h[0] for h in heads}) == 1
    assert len({b"\r\n".join(h[-5:]) for h in heads}) == 1


def test_skeleton_notices_a_changed_from_value():
    skeleton = MimeSkeleton.for_message(make(), clock=lambda: NOW)
    raw = skeleton.build(make(from_addr="Other <other@example.org>"))
    assert parse(raw)["From"].addresses[0].addr_spec == "other@example.org"


def test_build_mime_convenience_matches_skeleton_output():
    msg = CASES["non-ascii names"]
    raw = build_mime(msg)
    assert summary(raw)["parts"] == summary(fast(msg))["parts"]
    assert [n for n, _ in parse(raw).items()] == [n for n, _ in parse(fast(msg)).items()]


@pytest.mark.parametrize("email_addr", ["ann smith@example.org", "ann@example.org>, x@y.org", "no-at-sign",
                                        "<ann@example.org>", "ann@"])
def test_unusable_address_is_an_error_naming_the_recipient(email_addr):
    with pytest.raises(MessageError, match=r"recipient 7 .*is not a usable e-mail address"):
        fast(make(to_email=email_addr))


@pytest.mark.parametrize("name", ["Bcc", "To", "X Bad", "X:Bad", "Subject"])
def test_extra_header_name_must_be_safe_and_not_reserved(name):
    with pytest.raises(MessageError, match=f"extra header name '{name}' is not allowed"):
        fast(make(headers=((name, "x"),)))


def test_unfoldable_extra_header_is_an_error():
    with pytest.raises(MessageError, match="header List-Unsubscribe: a word of 1201 characters cannot be folded"):
        fast(make(headers=(("List-Unsubscribe", "<https://e.org/" + "a" * 1185 + ">"),)))


def test_bad_from_is_an_error_naming_the_setting():
    with pytest.raises(MessageError, match=r"From 'Newsletter' is not a mailbox.*\n.*\[newsletter\] from"):
        fast(make(from_addr="Newsletter"))


@pytest.fixture
def smtp_sink():
    """An aiosmtpd server on 127.0.0.1 that keeps the DATA bytes it receives."""
    from aiosmtpd.controller import Controller

    class Keep:
        def __init__(self):
            self.received: list[bytes] = []

        async def handle_DATA(self, server, session, envelope):
            self.received.append(envelope.original_content)
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    handler = Keep()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def test_bytes_survive_smtp_unchanged(smtp_sink):
    """Dot-leading lines and long HTML go through smtplib → aiosmtpd byte for byte."""
    handler, port = smtp_sink
    raws = [fast(CASES["dots and From"]), fast(CASES["single-line 60k html"])]
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        for raw in raws:
            client.sendmail("bounces@example.org", ["ann@example.org"], raw)
    assert handler.received == raws


def test_replace_keeps_message_frozen_contract():
    # OutgoingMessage.mime is what the send loop fills with build()'s bytes.
    msg = make()
    filled = replace(msg, mime=fast(msg))
    assert filled.mime.startswith(b"From: Innovation Hub News <news@example.org>\r\nTo: Ann Smith <ann@example.org>\r\n")


def test_random_bodies_round_trip_within_line_limits():
    import random

    rng = random.Random(20231221)
    alphabet = ["a", "b", " ", "  ", "\t", "=", ".", "é", "€", "🎉", "\n", "\r\n", "\r", "From ", "=?", "$"]
    for _ in range(120):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 400)))
        html = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 400)))
        raw = fast(make(text=text, html=html))
        assert_wire_format(raw)
        got_text, got_html = (p.get_content() for p in parse(raw).iter_parts())
        norm = lambda s: s.replace("\r\n", "\n").replace("\r", "\n")  # noqa: E731
        want = lambda s: norm(s) if norm(s).endswith("\n") else norm(s) + "\n"  # noqa: E731
        assert norm(got_text) == want(text)
        assert norm(got_html) == want(html)


def test_segment_cache_reuses_encodings_and_keeps_content_exact():
    """One skeleton, many recipients: static segments come from the cache, bodies stay exact."""
    import random

    rng = random.Random(8058)
    alphabet = ["</tr>", "</tr>", "\n\n", "\n", "x" * 37, "y" * 75, "é", "=", ".", " ", "\t", "<td>", "€"]
    want = lambda s: s if s.endswith("\n") else s + "\n"  # noqa: E731
    skeleton = MimeSkeleton(clock=lambda: NOW)
    for _ in range(6):
        template = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))) for _ in range(4)]
        for i in range(12):
            value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6))) + str(i)
            msg = make(html=value.join(template), text=template[0] + value + template[1], recipient_id=i)
            raw = skeleton.build(msg)
            assert_wire_format(raw)
            got_text, got_html = (p.get_content().replace("\r\n", "\n") for p in parse(raw).iter_parts())
            assert got_html == want(msg.html)
            assert got_text == want(msg.text)
            # A cache hit gives the very bytes a fresh skeleton (all misses) writes.
            assert raw == MimeSkeleton(boundary=skeleton.boundary, clock=lambda: NOW).build(msg)
    assert sum(len(c) for c in skeleton._html_qp.caches.values()) > 10


def test_segment_cache_output_decodes_like_a_whole_body_encoding():
    from digest.delivery.mime import _qp

    template = ("<table>" + "".join(f"<tr><td>row {i} café = {'z' * (i % 90)}</td></tr>" for i in range(60))
                + "<tr><td>%s</td></tr></table>\n")
    skeleton = MimeSkeleton(clock=lambda: NOW)
    for name in ["Ann", "Zoë", "王", "Bob"]:
        html = template % name
        raw = skeleton.build(make(html=html))
        body = raw.split(b'text/html; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n')[1]
        body = body.split(b"\r\n--=_digest_")[0]
        assert quopri.decodestring(body) == quopri.decodestring(_qp(html))
        assert quopri.decodestring(body).decode() == html.replace("\n", "\r\n")
    assert len(skeleton._html_qp.caches["</tr>"]) == 60  # static rows cached; the personal row is not
