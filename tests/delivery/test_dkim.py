"""DKIM signing: every signed message verified by dkimpy's own verifier against the key published on a
local DNS server (dnslib on 127.0.0.1), before and after a real SMTP server (aiosmtpd) carried it."""

from __future__ import annotations

import csv
import dataclasses
import os
import random
import stat

import dkim
import pytest

from digest.config import DkimSettings, load_settings
from digest.delivery.dkim import DkimSigner, relaxed_body, signer_for, unsigned_warning
from digest.delivery.dkimkeys import ED25519, RSA, DkimKey, generate_pem, keys_for_settings
from digest.delivery.job import SendJob
from digest.errors import ConfigError
from digest.store.rows import RecipientRow
from tests.helpers.dns_server import DnsServer, txt_lookup
from tests.helpers.project import EXAMPLE_ISSUE
from tests.helpers.send import KEYS, run

NAMES = [("ascii@example.net", "Ada Lovelace"), ("zoe@bücher.de", "Zoë Ångström"), ("li@example.net", "李小龍"),
         ("eve@example.net", "Eve\r\nBcc: x@y")]


@pytest.fixture(scope="module")
def pems():
    return {RSA: generate_pem(RSA), ED25519: generate_pem(ED25519)}


def write_key(path, pem: bytes):
    path.write_bytes(pem)
    path.chmod(0o600)
    return path


def configure(project, algorithm: str, extra: str = "") -> None:
    with open(project / "digest.toml", "a", encoding="utf-8") as fh:
        fh.write(f'\n[dkim]\nselector = "s1"\nalgorithm = "{algorithm}"\nkey_file = "dkim.pem"\n{extra}')


@pytest.fixture
def published(project, pems):
    """A DNS server publishing both keys' records for example.org (s1 = RSA or ed25519, s2 = ed25519)."""
    with DnsServer() as dns:
        for sel, alg in (("s1", RSA), ("s2", ED25519), ("e1", ED25519)):
            key = DkimKey(alg, sel, pems[alg], "test")
            dns.set(f"{sel}._domainkey.example.org", [("TXT", key.record())])
        yield dns


def messages(settings, subject_suffix: str = ""):
    os.environ["DIGEST_UNSUBSCRIBE_KEYS"] = KEYS
    job = SendJob(settings, EXAMPLE_ISSUE)
    if subject_suffix:
        job.personalizer.subject_prefix = subject_suffix
    rows = [RecipientRow(id=i, key=e, email=e, name=n, fields={"first_name": n}, tags=(), line=i + 2)
            for i, (e, n) in enumerate(NAMES)]
    return job.builder()(rows)


@pytest.mark.parametrize("algorithm,selectors", [(RSA, ["s1"]), (ED25519, ["e1"]), ("both", ["s1", "s2"])])
def test_every_built_message_verifies_against_the_published_key(project, pems, published, algorithm, selectors,
                                                                 monkeypatch):
    write_key(project / "dkim.pem", pems[ED25519 if algorithm == ED25519 else RSA])
    extra = ""
    if algorithm == "both":
        write_key(project / "ed.pem", pems[ED25519])
        extra = 'ed25519_selector = "s2"\ned25519_key_file = "ed.pem"\n'
    configure(project, algorithm, extra)
    if algorithm == ED25519:
        (project / "digest.toml").write_text((project / "digest.toml").read_text().replace('"s1"', '"e1"'))
    monkeypatch.setenv("DIGEST_UNSUBSCRIBE_KEYS", KEYS)
    built = messages(load_settings(project / "digest.toml"), "Ünïcode 🎉 ")
    lookup = txt_lookup(published)
    for msg in built:
        assert msg.mime.count(b"DKIM-Signature:") == len(selectors)
        d = dkim.DKIM(msg.mime)
        for idx in range(len(selectors)):
            assert d.verify(idx, dnsfunc=lookup), (msg.to_email, idx)
        # RFC 8058 §4: the signature covers both unsubscribe headers
        h = dkim.util.parse_tag_value(_sig(msg.mime))[b"h"]
        assert {b"list-unsubscribe", b"list-unsubscribe-post", b"from", b"to", b"subject"} <= set(
            x.strip() for x in h.split(b":"))


def _sig(mime: bytes) -> bytes:
    head = mime.split(b"\r\n\r\n", 1)[0]
    value = head.split(b"DKIM-Signature:", 1)[1]
    lines = value.split(b"\r\n")
    out = [lines[0]]
    for line in lines[1:]:
        if not line[:1].isspace():
            break
        out.append(line)
    return b"".join(out)


def test_altering_list_unsubscribe_breaks_the_signature(project, pems, published):
    write_key(project / "dkim.pem", pems[RSA])
    configure(project, RSA)
    msg = messages(load_settings(project / "digest.toml"))[0].mime
    lookup = txt_lookup(published)
    assert dkim.verify(msg, dnsfunc=lookup)
    start = msg.index(b"List-Unsubscribe: <") + len(b"List-Unsubscribe: <")
    altered = msg[:start] + b"https://evil.example/x" + msg[msg.index(b">", start):]
    assert not dkim.verify(altered, dnsfunc=lookup)
    # an added second List-Unsubscribe (oversigned by default) breaks it too
    assert not dkim.verify(b"List-Unsubscribe: <https://evil.example/>\r\n" + msg, dnsfunc=lookup)
    body_changed = msg.replace(b"Innovation", b"Innovatiom", 1)
    assert not dkim.verify(body_changed[:-40] + b"changed" + body_changed[-33:], dnsfunc=lookup)


def test_signed_messages_verify_after_the_real_smtp_server(project, pems, published, smtp_server, monkeypatch,
                                                          capsys):
    write_key(project / "dkim.pem", pems[RSA])
    write_key(project / "ed.pem", pems[ED25519])
    configure(project, "both", 'ed25519_selector = "s2"\ned25519_key_file = "ed.pem"\n')
    table = smtp_server.smtp_settings()
    with open(project / "digest.toml", "a", encoding="utf-8") as fh:
        fh.write("\n[smtp]\n" + "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in table.items()))
    with open(project / "list.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["email", "first_name", "last_name", "organisation", "tags"])
        for email_, name in NAMES[:3] + [(f"r{i}@example.net", f"Réader {i}") for i in range(5)]:
            w.writerow([email_, name, "Example", "Org", "members"])
    for k, v in {"DIGEST_UNSUBSCRIBE_KEYS": KEYS, "DIGEST_SEND_TRANSPORT": "smtp",
                 "DIGEST_PATHS_SUBSCRIBERS": "list.csv"}.items():
        monkeypatch.setenv(k, v)
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes")
    assert code == 0, out + err
    assert "does not DKIM-sign" not in err
    lookup = txt_lookup(published)
    assert len(smtp_server.deliveries) == 8
    for delivery in smtp_server.deliveries:
        d = dkim.DKIM(delivery.data)
        assert d.verify(0, dnsfunc=lookup) and d.verify(1, dnsfunc=lookup), delivery.rcpt_tos


def test_the_dry_run_shows_the_signing_and_an_unsigned_smtp_send_warns_once(project, pems, smtp_server,
                                                                             monkeypatch, capsys):
    table = smtp_server.smtp_settings()
    with open(project / "digest.toml", "a", encoding="utf-8") as fh:
        fh.write("\n[smtp]\n" + "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in table.items()))
    for k, v in {"DIGEST_UNSUBSCRIBE_KEYS": KEYS, "DIGEST_SEND_TRANSPORT": "smtp",
                 "DIGEST_SEND_BATCH_SIZE": "2"}.items():
        monkeypatch.setenv(k, v)
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE)
    assert "dkim         not signed by digest" in out
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes")
    assert code == 0 and err.count("does not DKIM-sign") == 1
    write_key(project / "dkim.pem", pems[RSA])
    configure(project, RSA)
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE)
    assert "dkim         signed: rsa-sha256 s=s1; d=example.org; c=relaxed/relaxed; h=from:to:subject" in out
    assert "list-unsubscribe:list-unsubscribe-post" in out


def test_an_api_transport_is_left_to_sign_itself(settings):
    from digest.delivery.dkim import signing_plan
    from digest.transports import transport_class

    assert signing_plan(settings, transport_class("postmark")).startswith("by the API provider")
    assert unsigned_warning(settings, transport_class("postmark")) is None
    assert unsigned_warning(settings, transport_class("outbox")) is None
    assert unsigned_warning(settings, transport_class("smtp"))


def test_a_key_others_can_read_is_refused(project, pems):
    write_key(project / "dkim.pem", pems[RSA]).chmod(0o644)
    configure(project, RSA)
    with pytest.raises(ConfigError, match="chmod 600"):
        keys_for_settings(load_settings(project / "digest.toml"), env={})


def test_the_key_from_an_environment_variable(project, pems, published):
    with open(project / "digest.toml", "a", encoding="utf-8") as fh:
        fh.write('\n[dkim]\nselector = "s1"\n')
    settings = load_settings(project / "digest.toml")
    with pytest.raises(ConfigError, match="DIGEST_DKIM_KEY"):
        signer_for(settings, env={})
    signer = signer_for(settings, env={"DIGEST_DKIM_KEY": pems[RSA].decode()})
    unsigned = messages(dataclasses.replace(settings, dkim=DkimSettings()))[0].mime
    assert b"DKIM-Signature" not in unsigned
    assert dkim.verify(signer.sign(unsigned), dnsfunc=txt_lookup(published))


def test_the_required_headers_cannot_be_left_out(project, pems):
    write_key(project / "dkim.pem", pems[RSA])
    configure(project, RSA, 'headers = ["From", "To", "Subject"]\n')
    with pytest.raises(ConfigError, match="List-Unsubscribe"):
        signer_for(load_settings(project / "digest.toml"))


def test_keygen_writes_a_private_key_and_prints_its_record(project, capsys):
    code, out, _ = run(capsys, "dkim", "keygen", "--selector", "k1", "--algorithm", "ed25519-sha256",
                       "--out", "new.pem")
    assert code == 0
    assert stat.S_IMODE((project / "new.pem").stat().st_mode) == 0o600
    key = DkimKey(ED25519, "k1", (project / "new.pem").read_bytes(), "new.pem")
    assert key.record() in out and "k1._domainkey.example.org" in out
    code, _, err = run(capsys, "dkim", "keygen", "--selector", "k1", "--out", "new.pem")
    assert code != 0 and "does not overwrite" in err


def test_relaxed_body_is_dkimpys_byte_for_byte():
    from dkim.canonicalization import Relaxed

    rng = random.Random(7)
    alphabet = [b" ", b"\t", b"\r\n", b"a", b"=", b"  ", b"\r", b"\n"]
    for _ in range(3000):
        body = b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        assert relaxed_body(body) == Relaxed.canonicalize_body(body), body


def test_a_signer_survives_pickling_into_a_builder_process(pems, published):
    import pickle

    signer = DkimSigner([DkimKey(RSA, "s1", pems[RSA], "t")], "example.org")
    copy = pickle.loads(pickle.dumps(signer))
    mime = b"From: a@example.org\r\nTo: b@example.net\r\nSubject: x\r\n\r\nbody\r\n"
    assert dkim.verify(copy.sign(mime), dnsfunc=txt_lookup(published))


def test_the_piecewise_canonicalisation_equals_dkimpys(project, pems, monkeypatch):
    from dkim.canonicalization import Relaxed

    signer = DkimSigner([DkimKey(RSA, "s1", pems[RSA], "t")], "example.org")
    monkeypatch.setenv("DIGEST_UNSUBSCRIBE_KEYS", KEYS)
    bodies = [m.mime.split(b"\r\n\r\n", 1)[1] for m in messages(load_settings(project / "digest.toml"))]
    rng = random.Random(3)
    alphabet = [b" ", b"\t", b"\r\n", b"a", b"</tr>", b"  ", b"</tr> ", b"\t</tr>"]
    bodies += [b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(2000)]
    for body in bodies + bodies[:5]:  # the second time through, from the cache
        assert signer._relaxed(body) == Relaxed.canonicalize_body(body)


def test_send_due_warns_once_when_an_unsigned_smtp_send_goes_out(project, smtp_server, monkeypatch, capsys):
    table = smtp_server.smtp_settings()
    with open(project / "digest.toml", "a", encoding="utf-8") as fh:
        fh.write("\n[smtp]\n" + "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in table.items()))
    for k, v in {"DIGEST_UNSUBSCRIBE_KEYS": KEYS, "DIGEST_SEND_TRANSPORT": "smtp"}.items():
        monkeypatch.setenv(k, v)
    code, out, err = run(capsys, "send", "--due")
    assert code == 0 and "does not DKIM-sign" not in out + err  # nothing due: a quiet run stays quiet
    issue = project / "issues" / f"{EXAMPLE_ISSUE}.yaml"
    issue.write_text(issue.read_text(encoding="utf-8").replace(
        "date: 2023-12-21\n", "date: 2023-12-21\nsend_at: 2023-12-21T09:00:00+01:00\n", 1), encoding="utf-8")
    code, out, err = run(capsys, "send", "--due")
    assert code == 0, out + err
    assert err.count("does not DKIM-sign") == 1
