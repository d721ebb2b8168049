"""`digest build`: images copied only into the issue's own folder, the web version readable by a web
server, and the sample message.eml kept out of the folder meant for publishing."""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from tests.helpers.project import EXAMPLE_ISSUE


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def build(*args: str):
    result = CliRunner().invoke(cli, ["build", EXAMPLE_ISSUE, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def everything_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


def test_images_outside_the_issue_folder_are_copied_into_the_issues_output_only(project, tmp_path):
    (project / "shared").mkdir()
    shutil.copy(project / "issues" / "images" / "yellow-shape.png", project / "shared" / "logo.png")
    elsewhere = tmp_path / "elsewhere.png"
    shutil.copy(project / "issues" / "images" / "yellow-shape.png", elsewhere)
    issue = project / "issues" / f"{EXAMPLE_ISSUE}.yaml"
    text = issue.read_text(encoding="utf-8").replace("src: images/yellow-shape.png", "src: ../shared/logo.png", 1)
    text = text.replace("  - title: Innovation Festival\n",
                        f"  - title: Innovation Festival\n    image:\n      src: {elsewhere}\n      alt: A picture\n", 1)
    issue.write_text(text, encoding="utf-8")
    before = everything_under(tmp_path) - everything_under(project / "out") if (project / "out").exists() \
        else everything_under(tmp_path)
    build()
    folder = project / "out" / EXAMPLE_ISSUE
    created = everything_under(tmp_path) - before
    outside = sorted(p for p in created if not p.is_relative_to(project / "out"))
    assert outside == [], outside
    assert not (project / "out" / "shared").exists()
    html = (folder / "index.html").read_text(encoding="utf-8")
    sources = re.findall(r'<img[^>]* src="([^"]+)"', html)
    local = [s for s in sources if not s.startswith(("http:", "https:"))]
    assert len(local) == 2, sources
    for src in local:  # every image the web version shows is inside its own folder
        target = (folder / src).resolve()
        assert target.is_relative_to(folder.resolve()) and target.is_file(), src


def test_the_web_version_is_readable_by_a_web_server_whatever_the_umask(project):
    old = os.umask(0o077)
    try:
        build()
    finally:
        os.umask(old)
    folder = project / "out" / EXAMPLE_ISSUE
    assert mode(folder) == 0o755
    assert mode(folder / "images") == 0o755
    assert {mode(p) for p in folder.rglob("*") if p.is_file()} == {0o644}


def test_message_eml_is_a_sample_readers_and_not_in_the_published_folder(project, monkeypatch):
    monkeypatch.setenv("DIGEST_UNSUBSCRIBE_KEYS", "k1:bn7IWq1aSdrgHIDxwfs0nqQB1JcTlIhZZNIu8yz2sRs")
    issue = project / "issues" / f"{EXAMPLE_ISSUE}.yaml"
    issue.write_text(issue.read_text(encoding="utf-8").replace("intro: |\n", "intro: |\n  Dear {{ first_name }},\n\n", 1),
                     encoding="utf-8")
    result = build()
    folder = project / "out" / EXAMPLE_ISSUE
    assert not (folder / "message.eml").exists()
    eml = project / "out" / f"{EXAMPLE_ISSUE}.eml"
    assert mode(eml) == 0o600
    raw = eml.read_bytes()
    first = (project / "subscribers.example.csv").read_text(encoding="utf-8").splitlines()[1].split(",")[0]
    assert first.encode() not in raw and b"Anouk" not in raw  # nobody from the list
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["To"].addresses[0].addr_spec == "reader@example.org"
    assert "Dear Example," in msg.get_body(("plain",)).get_content()
    assert "a sample reader" in result.output and f"wrote out/{EXAMPLE_ISSUE}.eml" in result.output
    as_her = build("--as", "fatima.elamrani@example.com")
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert msg["To"].addresses[0].addr_spec == "fatima.elamrani@example.com"
    assert "Dear Fatima," in msg.get_body(("plain",)).get_content()
    assert "fatima.elamrani@example.com" in as_her.output and not (folder / "message.eml").exists()


def test_a_test_send_to_an_address_not_on_the_list_uses_a_sample_and_says_so(project, capsys):
    from tests.helpers.send import run

    issue = project / "issues" / f"{EXAMPLE_ISSUE}.yaml"
    issue.write_text(issue.read_text(encoding="utf-8").replace("intro: |\n", "intro: |\n  Dear {{ first_name }},\n\n", 1),
                     encoding="utf-8")
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--test", "me@example.net,anouk.devries@example.org")
    assert code == 0, err
    files = {f.name.split(".")[0]: f for f in (project / "out" / "outbox").glob("*.eml")}
    mine = email.message_from_bytes(files["me@example"].read_bytes(), policy=email.policy.default)
    assert "Dear Example," in mine.get_body(("plain",)).get_content()  # not Anouk's fields
    listed = email.message_from_bytes(files["anouk"].read_bytes(), policy=email.policy.default)
    assert "Dear Anouk," in listed.get_body(("plain",)).get_content()
    line = next(x for x in out.splitlines() if "me@example.net" in x)
    assert "not on the list: a sample reader's fields" in line
    assert "sample" not in next(x for x in out.splitlines() if "anouk" in x)
