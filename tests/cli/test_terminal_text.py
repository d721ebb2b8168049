"""What the CLI prints from data (subscriber fields, provider text, names typed by a user) cannot drive the terminal."""

from __future__ import annotations

import csv
import re

from digest.text import terminal_safe
from tests.helpers.project import EXAMPLE_ISSUE
from tests.helpers.send import run

# Set the window title, write the clipboard (OSC 52), clear the screen, an 8-bit CSI, a bell, a
# carriage return that would overwrite the line, and a right-to-left override.
HOSTILE = "Eve\x1b]0;owned\x07\x1b]52;c;ZWNobyBwd25lZA==\x07\x1b[2J\x9b31m\r\u202eX"
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def test_terminal_safe_shows_controls_as_escapes_and_keeps_text():
    assert terminal_safe("Zoë Smith — 東京 👋") == "Zoë Smith — 東京 👋"
    safe = terminal_safe(HOSTILE)
    assert not CONTROL.search(safe)
    assert safe.startswith("Eve\\x1b]0;owned\\x07") and "\\x9b31m\\r\\u202eX" in safe
    assert terminal_safe("one\ntwo") == "one\\ntwo"
    assert terminal_safe("one\ntwo\x1b", multiline=True) == "one\ntwo\\x1b"


def _hostile_list(project):
    with open(project / "list.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["email", "first_name", "last_name", "organisation", "tags"])
        w.writerow(["eve@example.org", HOSTILE, "Example", "Org", "members"])
    path = project / "issues" / f"{EXAMPLE_ISSUE}.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("intro: |\n", "intro: |\n  Dear {{ first_name }},\n\n", 1),
                    encoding="utf-8")


def test_the_dry_run_sample_prints_no_control_characters(project, monkeypatch, capsys):
    monkeypatch.setenv("DIGEST_PATHS_SUBSCRIBERS", "list.csv")
    _hostile_list(project)
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE)
    assert code == 0, err
    assert "Dear Eve\\x1b]0;owned\\x07" in out  # shown, visibly, not obeyed
    assert not CONTROL.search(out + err)


def test_the_test_send_output_prints_no_control_characters(project, monkeypatch, capsys):
    monkeypatch.setenv("DIGEST_PATHS_SUBSCRIBERS", "list.csv")
    _hostile_list(project)
    subject = project / "issues" / f"{EXAMPLE_ISSUE}.yaml"
    subject.write_text(subject.read_text(encoding="utf-8").replace(
        'subject: "', 'subject: "For {{ first_name }} — ', 1), encoding="utf-8")
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--test", "eve@example.org")
    assert code == 0, err
    assert "eve@example.org" in out
    assert not CONTROL.search(out + err)


def test_an_error_naming_data_prints_no_control_characters(project, capsys):
    code, out, err = run(capsys, "send", "no-such\x1b]0;owned\x07issue")
    assert code == 1
    assert "no issue 'no-such\\x1b]0;owned\\x07issue'" in err
    assert not CONTROL.search(out + err)
