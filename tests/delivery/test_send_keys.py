"""The development signing key: fine for the outbox (nothing reaches people), refused for real sends."""

from __future__ import annotations

from click.testing import CliRunner

from digest.cli import cli

from tests.helpers.project import EXAMPLE_ISSUE


def test_outbox_send_works_with_no_secrets_set(project):
    result = CliRunner().invoke(cli, ["send", EXAMPLE_ISSUE, "--yes"])
    assert result.exit_code == 0, result.output
    assert "note: DIGEST_UNSUBSCRIBE_KEYS is not set: the unsubscribe links in these outbox files" in result.output
    files = sorted((project / "out" / "outbox").glob("*.eml"))
    assert len(files) == 12
    import email
    import email.policy

    msg = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert "?token=dev." in msg["List-Unsubscribe"]


def test_real_transport_refuses_the_development_key(project):
    result = CliRunner().invoke(cli, ["send", EXAMPLE_ISSUE, "--yes", "--transport", "smtp"])
    assert result.exit_code != 0
    assert "DIGEST_UNSUBSCRIBE_KEYS is not set: the unsubscribe links would be signed with the public " \
           "development key" in str(result.exception)
    # Refused before the audience was fixed: no send was started in the ledger.
    from digest.store.ledger import Ledger

    path = project / ".digest" / "ledger.sqlite3"
    if path.exists():
        with Ledger(path, readonly=True) as ledger:
            assert ledger.get_send(EXAMPLE_ISSUE) is None


def test_a_send_by_hand_says_when_the_issue_is_scheduled_later(project):
    issue = project / "issues" / f"{EXAMPLE_ISSUE}.yaml"
    issue.write_text(issue.read_text().replace("date: 2023-12-21\n", "date: 2023-12-21\nsend_at: 2999-01-01T09:00+01:00\n"))
    result = CliRunner().invoke(cli, ["send", EXAMPLE_ISSUE])
    assert result.exit_code == 0, result.output
    assert (f"note: '{EXAMPLE_ISSUE}' is scheduled for 2999-01-01T09:00:00+01:00; a send by hand goes out now."
            in result.output)
    assert "Dry run: nothing was sent." in result.output


def test_a_send_by_hand_after_not_after_is_flagged(project):
    issue = project / "issues" / f"{EXAMPLE_ISSUE}.yaml"
    issue.write_text(issue.read_text().replace(
        "date: 2023-12-21\n", "date: 2023-12-21\nsend_at: 2023-12-21T09:00+01:00\nnot_after: 2023-12-22T09:00+01:00\n"))
    result = CliRunner().invoke(cli, ["send", EXAMPLE_ISSUE])
    assert "has not_after 2023-12-22T09:00:00+01:00, which has passed" in result.output
