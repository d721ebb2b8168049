"""Merge fields: what digest fills, what it flags (never sends literally), and where it points."""

from __future__ import annotations

import pytest

from digest.audience.subscribers import Subscriber
from digest.audience.tokens import KeyRing
from digest.compose.issue import load_issue
from digest.compose.render import render_issue
from digest.config import load_settings
from digest.delivery.personalize import Personalizer
from tests.checks.helpers import ISSUE_FILE, edit_issue, findings, line_of, run, write_list
from tests.helpers.project import EXAMPLE_ISSUE

INTRO = "As we look back"


def test_the_example_issue_checks_clean(project):
    assert findings(project) == {}
    code, out, _ = run("check", EXAMPLE_ISSUE)
    assert code == 0
    assert out.startswith(f"{EXAMPLE_ISSUE}: 0 error(s), 0 warning(s) · 12 recipients in subscribers.example.csv")


@pytest.mark.parametrize("written, excerpt", [
    ("{{ first_name | upper }}", "{{ first_name | upper }}"),
    ("{% if first_name %}Hi{% endif %}", "{% if first_name %}"),
    ("{{ first_name }", "{{ first_name }, as we look ba"),  # an unclosed one: what follows it
    ("{{ first_name|default(there) }}", "{{ first_name|default(there) }}"),
])
def test_syntax_digest_does_not_fill_is_an_error_at_its_line(project, written, excerpt):
    edit_issue(project, INTRO, f"Dear {written}, as we look back")
    [finding] = findings(project)["merge-syntax"][:1]
    assert finding.where == f"{ISSUE_FILE}:{line_of(project, written)}"
    assert finding.message == (f"'{excerpt}' in intro is not merge syntax digest fills: readers would see it "
                               "as written.")
    assert finding.level == "error"


def test_a_misspelt_field_points_at_the_issue_line_with_did_you_mean(project):
    edit_issue(project, INTRO, "Dear {{ frist_name }}, as we look back")
    [finding] = findings(project)["merge-unknown-field"]
    assert finding.where == f"{ISSUE_FILE}:{line_of(project, 'frist_name')}"
    assert finding.message == "no column of the list provides the merge field 'frist_name', and it has no default."
    assert finding.hint.startswith("did you mean {{ first_name }}?")
    code, out, err = run("send", EXAMPLE_ISSUE, "--yes")
    assert code == 1 and "merge-unknown-field" in err and "frist_name" in err
    assert not (project / ".digest" / "ledger.sqlite3").exists()


def _message(project, sub: Subscriber):
    settings = load_settings(project / "digest.toml")
    rendered = render_issue(load_issue(project / ISSUE_FILE), settings)
    return Personalizer(rendered, settings, KeyRing.for_settings(settings, allow_dev_key=True)).message_for(sub, 1)


@pytest.mark.parametrize("written", ["{{ First_Name }}", "{{ First Name }}", "{{ first-name }}",
                                     "{{ subscriber.first_name }}"])
def test_field_names_match_columns_as_columns_match_each_other(project, written):
    write_list(project, [["ann@example.org", "Ann", "members"]], header=("Email", "First Name", "Tags"))
    edit_issue(project, INTRO, f"Dear {written}, as we look back")
    assert findings(project) == {}
    sub = Subscriber(email="ann@example.org", name="", fields={"first_name": "Ann"}, tags=frozenset(), line=2)
    assert "Dear Ann, as we look back" in _message(project, sub).text


def test_an_inline_default_fills_empty_cells(project):
    write_list(project, [["ann@example.org", "Ann", "members"], ["bo@example.org", "", "members"]])
    edit_issue(project, INTRO, 'Dear {{ first_name | default("reader") }}, as we look back')
    assert findings(project) == {}
    empty = Subscriber(email="bo@example.org", name="", fields={"first_name": ""}, tags=frozenset(), line=3)
    assert "Dear reader, as we look back" in _message(project, empty).text
    ann = Subscriber(email="ann@example.org", name="", fields={"first_name": "Ann"}, tags=frozenset(), line=2)
    assert "Dear Ann, as we look back" in _message(project, ann).text


def test_a_default_for_a_field_no_column_has_is_a_warning(project):
    edit_issue(project, INTRO, "Dear {{ nickname | default('friend') }}, as we look back")
    [finding] = findings(project)["merge-default-only"]
    assert finding.level == "warning"
    assert finding.message == "no column of the list is called 'nickname': every reader gets the default 'friend'."


def test_rows_without_a_value_and_no_default_are_named(project):
    toml = project / "digest.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('first_name = "friend", ', ""), encoding="utf-8")
    write_list(project, [["ann@example.org", "Ann", "members"], ["bo@example.org", "", "members"]])
    edit_issue(project, INTRO, "Dear {{ first_name }}, as we look back")
    [finding] = findings(project)["merge-missing-value"]
    assert finding.message == ("1 reader(s) have no value for a merge field without a default: "
                               "subscribers.example.csv:3 (bo@example.org: no first_name).")


def test_a_value_holding_template_syntax_is_refused_with_its_row(project):
    write_list(project, [["ann@example.org", "{{ Ann }}", "members"]])
    edit_issue(project, INTRO, "Dear {{ first_name }}, as we look back")
    [finding] = findings(project)["merge-unsafe-value"]
    assert finding.message == ("1 reader(s) have values that would break their copy: subscribers.example.csv:2 "
                               "(first_name = '{{ Ann }}' holds template syntax).")
