"""The outbox transport: .eml files (overwritten on re-send) or a Maildir, written atomically."""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

import pytest

from digest.config import load_settings
from digest.errors import ConfigError, PermanentTransportError
from digest.transports import transport_class
from digest.outgoing import OutgoingMessage
from digest.transports.base import Status
from digest.transports.outbox import OutboxTransport, eml_name


def settings_for(tmp_path: Path, **outbox):
    (tmp_path / "digest.toml").write_text("", encoding="utf-8")
    settings = load_settings(tmp_path / "digest.toml", env={})
    if outbox:
        settings.transports["outbox"] = outbox
    return settings


def message(i: int, to: str | None = None, *, message_id: str | None = None, body: str = "Hello") -> OutgoingMessage:
    to = to or f"reader{i}@example.net"
    mid = message_id or f"<issue-1.{i}@example.org>"
    mime = (f"From: News <news@example.org>\r\nTo: {to}\r\nSubject: Issue {i}\r\nMessage-ID: {mid}\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body} {i}\r\n").encode("utf-8")
    return OutgoingMessage(recipient_id=i, to_email=to, to_name="", from_addr="News <news@example.org>",
                           envelope_from="news@example.org", reply_to=None, subject=f"Issue {i}", html="",
                           text="", message_id=mid, mime=mime)


def test_eml_one_file_per_recipient_with_the_exact_bytes(tmp_path):
    t = OutboxTransport(settings_for(tmp_path))
    msgs = [message(i) for i in range(1, 4)]
    with t:
        results = t.send_batch(msgs)
    folder = tmp_path / "out" / "outbox"
    assert t.describe() == f"outbox: {folder} (eml)"
    assert [r.status for r in results] == [Status.SENT] * 3
    for msg, result in zip(msgs, results):
        path = Path(result.provider_id)
        assert path.parent == folder and path.name.startswith(msg.to_email + ".")
        assert path.read_bytes() == msg.mime
        parsed = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        assert parsed["To"] == msg.to_email
    assert sorted(p.name for p in folder.iterdir()) == sorted(Path(r.provider_id).name for r in results)


def test_eml_resend_overwrites_instead_of_duplicating(tmp_path):
    t = OutboxTransport(settings_for(tmp_path))
    first = t.send_batch([message(1, body="First")])
    again = t.send_batch([message(1, body="Second")])
    assert first[0].provider_id == again[0].provider_id
    files = list((tmp_path / "out" / "outbox").iterdir())
    assert len(files) == 1 and files[0].read_bytes().endswith(b"Second 1\r\n")
    # The same reader with another Message-ID (another issue) gets a file of its own.
    other = t.send_batch([message(1, message_id="<issue-2.1@example.org>")])
    assert other[0].provider_id != first[0].provider_id
    assert len(list((tmp_path / "out" / "outbox").iterdir())) == 2


def test_eml_name_is_safe_and_case_insensitive(tmp_path):
    a = message(1, "Ann.O'Neil+news@Example.ORG")
    b = message(1, "ann.o'neil+news@example.org")
    assert eml_name(a) == eml_name(b)
    assert eml_name(a).startswith("ann.o_neil+news@example.org.")
    weird = eml_name(message(2, "../../etc/passwd@x.org"))
    assert "/" not in weird and not weird.startswith(".")
    uni = eml_name(message(3, "josé@bücher.de"))
    assert uni.isascii() and "@xn--bcher-kva.de." in uni


def test_maildir_tmp_to_new_with_unique_names(tmp_path):
    t = OutboxTransport(settings_for(tmp_path, folder="mail", format="maildir"))
    results = t.send_batch([message(1), message(1), message(2)])
    root = tmp_path / "out" / "mail"
    assert t.describe() == f"outbox: {root} (maildir)"
    new = sorted((root / "new").iterdir())
    assert len(new) == 3 and len({p.name for p in new}) == 3
    assert list((root / "tmp").iterdir()) == [] and (root / "cur").is_dir()
    assert {r.provider_id for r in results} == {str(p) for p in new}
    data = Path(results[0].provider_id).read_bytes()
    assert b"\r\n" not in data and data.startswith(b"From: News <news@example.org>\nTo: reader1@example.net\n")


def test_absolute_folder_is_used_as_is(tmp_path):
    target = tmp_path / "elsewhere"
    t = OutboxTransport(settings_for(tmp_path, folder=str(target)))
    result = t.send_batch([message(1)])[0]
    assert Path(result.provider_id).parent == target


def test_unknown_format_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"digest.toml \[outbox\] format = 'mbox': expected 'eml' or 'maildir'"):
        OutboxTransport(settings_for(tmp_path, format="mbox"))
    with pytest.raises(ConfigError, match=r"digest.toml \[outbox\]: unknown setting 'fromat'. Did you mean 'format'"):
        OutboxTransport(settings_for(tmp_path, fromat="eml"))


def test_folder_that_cannot_be_created_is_a_clear_error(tmp_path):
    (tmp_path / "out").write_text("a file where the folder should be")
    t = OutboxTransport(settings_for(tmp_path))
    with pytest.raises(PermanentTransportError, match=rf"cannot create outbox folder {tmp_path}/out/outbox"):
        t.open()


def test_registered_as_the_default(tmp_path):
    settings = settings_for(tmp_path)
    assert settings.send.transport == "outbox"
    assert transport_class(settings.send.transport) is OutboxTransport
