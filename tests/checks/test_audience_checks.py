"""An issue that would reach nobody, or the wrong people, never leaves: the audience and list checks."""

from __future__ import annotations

import sqlite3

from tests.checks.helpers import ISSUE_FILE, edit_issue, findings, line_of, run, write_list
from tests.helpers.project import EXAMPLE_ISSUE

LIST = "subscribers.example.csv"


def test_an_audience_tag_nobody_has_is_an_error_with_did_you_mean(project):
    edit_issue(project, "date: 2023-12-21\n", "date: 2023-12-21\naudience: [member]\n")
    found = findings(project)
    [unknown] = found["audience-unknown-tag"]
    assert unknown.where == f"{ISSUE_FILE}:{line_of(project, 'audience:')}"
    assert unknown.message == f"no subscriber in {LIST} has the tag 'member'."
    assert unknown.hint.startswith("did you mean 'members'? tags in the list: climate, dei, mel, members")
    [empty] = found["audience-empty"]
    assert empty.message == f"nobody in {LIST} would receive the issue (12 without the tag member)."


def test_a_list_with_only_a_header_or_only_invalid_rows_has_no_valid_rows(project):
    write_list(project, [])
    [finding] = findings(project)["list-no-valid-rows"]
    assert finding.message == f"{LIST}: not one of its 0 rows is a usable subscriber (the file has no rows)."
    write_list(project, [["not-an-address", "A", ""], ["bob@", "B", ""]])
    [finding] = findings(project)["list-no-valid-rows"]
    assert finding.message == f"{LIST}: not one of its 2 rows is a usable subscriber (2 invalid)."


def test_a_semicolon_header_with_comma_rows_is_explained(project):
    (project / LIST).write_text("email;first_name\nann@example.org,Ann\nbo@example.org,Bo\n", encoding="utf-8")
    [finding] = findings(project)["list-no-valid-rows"]
    assert finding.hint == "the header is separated by semicolons but the rows by commas: save the file with one delimiter"
    code, out, err = run("subscribers", "check")
    assert code == 1
    assert f"Error: {LIST} has no valid subscriber: a send would reach nobody." in err
    assert "the header is separated by semicolons but the rows by commas" in err


def test_invalid_rows_are_a_note_that_names_them(project):
    write_list(project, [["ann@example.org", "Ann", ""], ["bob@", "Bob", ""]])
    [finding] = findings(project)["list-invalid-rows"]
    assert finding.level == "note"
    assert finding.message.startswith(f"1 row(s) of {LIST} are invalid and will be skipped (first: line 3: 'bob@'")


def test_everyone_suppressed_is_an_empty_audience(project):
    write_list(project, [["ann@example.org", "Ann", ""]])
    assert run("unsubscribe", "ann@example.org")[0] == 0
    [finding] = findings(project)["audience-empty"]
    assert finding.message == f"nobody in {LIST} would receive the issue (1 suppressed)."


def _sends(project):
    path = project / ".digest" / "ledger.sqlite3"
    if not path.exists():
        return []
    return sqlite3.connect(path).execute("SELECT slug, state FROM sends").fetchall()


def test_send_yes_to_nobody_exits_non_zero_and_records_nothing(project):
    edit_issue(project, "date: 2023-12-21\n", "date: 2023-12-21\naudience: members-only\n")
    code, out, err = run("send", EXAMPLE_ISSUE, "--yes")
    assert code == 1
    assert f"the pre-send checks stop '{EXAMPLE_ISSUE}': 2 errors." in err and "audience-empty" in err
    assert _sends(project) == []
    assert not list(project.glob("out/outbox/*.eml"))  # nothing written by the outbox transport


def test_send_due_to_nobody_fails_and_leaves_no_finished_send(project):
    edit_issue(project, "date: 2023-12-21\n", "date: 2023-12-21\nsend_at: 2023-12-21T09:00:00+01:00\n"
               "audience: [member]\n")
    code, out, err = run("send", "--due")
    assert code == 1
    assert f"{EXAMPLE_ISSUE}: failed — the pre-send checks stop '{EXAMPLE_ISSUE}': 2 errors." in err
    assert "audience-unknown-tag" in err
    assert _sends(project) == []  # nothing recorded as sent, let alone finished
    code, out, _ = run("schedule")
    assert "failed" in out and "the pre-send checks stop" in out


def test_the_ledger_never_records_an_empty_audience_even_without_the_checks(project, settings):
    # The send job's own guarantee under the gate: an audience that streams empty rolls back.
    import pytest

    from digest.delivery.job import SendJob
    from digest.delivery.options import RunOptions
    from digest.errors import CheckError

    write_list(project, [["bob@", "B", ""]])
    with pytest.raises(CheckError, match="nobody in .* would receive the issue"):
        SendJob(settings, EXAMPLE_ISSUE).run(RunOptions.from_settings(settings.send))
    assert _sends(project) == []


def test_after_a_refused_empty_send_fixing_the_issue_is_enough(project):
    # Nothing was recorded, so the corrected issue starts a new send: no --resume-changed needed.
    path = edit_issue(project, "date: 2023-12-21\n", "date: 2023-12-21\naudience: [member]\n")
    assert run("send", EXAMPLE_ISSUE, "--yes")[0] == 1
    path.write_text(path.read_text(encoding="utf-8").replace("audience: [member]", "audience: [members]"),
                    encoding="utf-8")
    code, out, err = run("send", EXAMPLE_ISSUE, "--yes")
    assert code == 0, err
    assert "Sending '2023-12-learning-innovation-highlights' via outbox (1 connection): 7 to send" in out  # the 7 members
