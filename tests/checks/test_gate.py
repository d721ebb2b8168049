"""The gate: errors stop every send; warnings stop one until accepted; the dry run and --json show them."""

from __future__ import annotations

import json
import sqlite3

from tests.checks.helpers import edit_file, edit_issue, run
from tests.helpers.project import EXAMPLE_ISSUE

PREHEADER = ('preheader: "It was a year full of inspiring connections and amazing sessions. '
             'We are stronger together!"\n')


def _sent(project) -> int:
    path = project / ".digest" / "ledger.sqlite3"
    if not path.exists():
        return 0
    return sqlite3.connect(path).execute("SELECT count(*) FROM recipients WHERE state='sent'").fetchone()[0]


def test_a_warning_stops_send_yes_until_accepted_with_the_flag(project):
    edit_issue(project, PREHEADER, "")  # compliance-preheader: a warning
    code, out, err = run("send", EXAMPLE_ISSUE, "--yes")
    assert code == 1 and _sent(project) == 0
    assert f"the pre-send checks stop '{EXAMPLE_ISSUE}': 1 warning." in err
    assert "--accept-warnings, or accept_warnings: [compliance-preheader] in the issue file" in err
    code, out, err = run("send", EXAMPLE_ISSUE, "--yes", "--accept-warnings")
    assert code == 0 and _sent(project) == 12
    assert "accepted warning compliance-preheader" in err


def test_an_issue_or_the_settings_can_accept_named_warnings(project):
    edit_issue(project, PREHEADER, "accept_warnings: [compliance-preheader]\n")
    code, _, err = run("send", EXAMPLE_ISSUE, "--yes")
    assert code == 0 and _sent(project) == 12, err


def test_send_accept_warnings_in_the_settings(project):
    edit_issue(project, PREHEADER, "")
    with open(project / "digest.toml", "a", encoding="utf-8") as fh:
        fh.write('accept_warnings = ["compliance-preheader"]\n')  # the file ends in [send]
    code, _, err = run("send", EXAMPLE_ISSUE, "--yes")
    assert code == 0 and _sent(project) == 12, err


def test_errors_cannot_be_accepted(project):
    edit_issue(project, "As we look back", "Dear {{ first_name | upper }}, as we look back")
    edit_issue(project, "date: 2023-12-21\n", "date: 2023-12-21\naccept_warnings: [merge-syntax]\n")
    code, _, err = run("send", EXAMPLE_ISSUE, "--yes", "--accept-warnings")
    assert code == 1 and _sent(project) == 0
    assert "1 error." in err and "merge-syntax" in err


def test_the_dry_run_shows_the_findings_and_fails_when_a_send_would_be_refused(project):
    code, out, err = run("send", EXAMPLE_ISSUE)
    assert code == 0 and "Pre-send checks: 0 error(s), 0 warning(s)" in out
    edit_issue(project, "As we look back", "Dear {{ frist_name }}, as we look back")
    code, out, err = run("send", EXAMPLE_ISSUE)
    assert code == 1
    assert "Pre-send checks: 1 error(s), 0 warning(s)" in out and "merge-unknown-field" in out
    assert "A real send would be refused" in err


def test_check_json_and_strict(project):
    edit_issue(project, PREHEADER, "")
    code, out, _ = run("check", EXAMPLE_ISSUE, "--json")
    data = json.loads(out)
    assert code == 0 and data["errors"] == 0 and data["warnings"] == 1 and data["recipients"] == 12
    [finding] = data["findings"]
    assert finding["code"] == "compliance-preheader" and finding["level"] == "warning"
    assert run("check", EXAMPLE_ISSUE, "--strict")[0] == 1


def test_send_due_stops_on_a_warning_and_records_why(project):
    edit_issue(project, PREHEADER, "send_at: 2023-12-21T09:00:00+01:00\n")
    code, out, err = run("send", "--due")
    assert code == 1 and _sent(project) == 0
    assert "compliance-preheader" in err
    code, out, err = run("send", "--due", "--accept-warnings")
    assert code == 0 and _sent(project) == 12, out + err


def test_build_prints_the_findings(project):
    edit_file(project / "digest.toml", 'language = "en"', 'language = ""')
    code, out, err = run("build", EXAMPLE_ISSUE)
    assert code == 0  # a build is for looking: it writes the files and says what a send would refuse
    assert "Pre-send checks: 1 error(s)" in err and "compliance-lang" in err


def test_the_preview_shows_the_findings(project, settings):
    from digest.preview.project import PreviewProject

    edit_issue(project, "As we look back", "Dear {{ frist_name | default('you') }}, as we look back")
    preview = PreviewProject(settings).frame_preview(EXAMPLE_ISSUE, None)
    assert [c["code"] for c in preview.checks] == ["merge-default-only"]
    assert preview.checks[0]["where"].startswith("issues/2023-12-learning-innovation-highlights.yaml:")


def test_findings_quoting_list_values_cannot_steer_the_terminal(project):
    from tests.checks.helpers import write_list

    write_list(project, [["ann@example.org", "{{ \x1b]0;owned\x07 }}", "members"]])
    edit_issue(project, "As we look back", "Dear {{ first_name }}, as we look back")
    code, out, _ = run("check", EXAMPLE_ISSUE)
    assert code == 1 and "merge-unsafe-value" in out
    assert "\x1b" not in out and "\x07" not in out and "\\x1b]0;owned\\x07" in out
