"""The development signing key: fine for the outbox (nothing reaches people), refused for real sends."""

from __future__ import annotations

from click.testing import CliRunner

from digest.cli import cli

from .conftest import EXAMPLE_ISSUE


def test_outbox_send_works_with_no_secrets_set(project):
    result = CliRunner().invoke(cli, ["send", EXAMPLE_ISSUE, "--yes"])
    assert result.exit_code == 0, result.output
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
    from digest.ledger import Ledger

    path = project / ".digest" / "ledger.sqlite3"
    if path.exists():
        with Ledger(path, readonly=True) as ledger:
            assert ledger.get_send(EXAMPLE_ISSUE) is None
