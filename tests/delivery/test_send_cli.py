"""`digest send / status / retry / unsubscribe / suppress` end to end against a real aiosmtpd server."""

from __future__ import annotations

import collections
import csv
import email
import email.policy
import socket
import sqlite3
import time

import pytest

from tests.helpers.project import EXAMPLE_ISSUE
from tests.helpers.send import KEYS, run, write_list
from tests.helpers.smtp_server import DROP


@pytest.fixture
def sendproject(project, smtp_server, monkeypatch):
    """The example project pointed at the aiosmtpd server, with a 30-reader list and signing keys."""
    table = smtp_server.smtp_settings()
    with open(project / "digest.toml", "a", encoding="utf-8") as fh:
        fh.write("\n[smtp]\n" + "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in table.items()))
    monkeypatch.setenv("DIGEST_UNSUBSCRIBE_KEYS", KEYS)
    monkeypatch.setenv("DIGEST_SEND_TRANSPORT", "smtp")
    monkeypatch.setenv("DIGEST_SEND_RETRY_BASE_DELAY", "0.01")
    monkeypatch.setenv("DIGEST_SEND_RETRY_MAX_DELAY", "0.05")
    monkeypatch.setenv("DIGEST_SEND_BATCH_SIZE", "5")
    monkeypatch.setenv("DIGEST_PATHS_SUBSCRIBERS", "list.csv")
    addresses = write_list(project / "list.csv", 30)
    return project, smtp_server, addresses


def delivered(server) -> collections.Counter:
    return server.recipients()


def test_dry_run_prints_the_plan_and_sends_nothing(sendproject, capsys):
    project, server, addresses = sendproject
    write_list(project / "list.csv", 30, extra_rows=[["not-an-address", "X", "", "", ""],
                                                   ["READER001@example.net", "Dup", "", "", ""]])
    code, out, _ = run(capsys, "unsubscribe", "reader002@example.net")
    assert code == 0
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE)
    assert code == 0, err
    assert "Innovation Hub News: Learning & Innovation Highlights 2023" in out
    assert "Innovation Hub News <innovationhub@example.org>" in out
    assert f"smtp://127.0.0.1:{server.port} (none)" in out
    assert "29 recipients" in out
    assert "1 suppressed · 1 invalid · 1 duplicates" in out
    assert "Sample message (to reader000@example.net)" in out and "List-Unsubscribe:" in out
    assert "Dry run: nothing was sent. Add --yes to send." in out
    assert server.deliveries == []


def test_send_delivers_exactly_once_and_a_rerun_sends_nothing(sendproject, capsys):
    project, server, addresses = sendproject
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes")
    assert code == 0, out + err
    assert delivered(server) == collections.Counter({a: 1 for a in addresses})
    assert "sent        30" in out and "0 already sent" in out
    assert "Reading list.csv and fixing the audience in the ledger" in out  # a new send reads the list
    msg = email.message_from_bytes(server.deliveries[0].data, policy=email.policy.default)
    assert msg["Subject"] == "Innovation Hub News: Learning & Innovation Highlights 2023"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes")
    assert code == 0 and "30 already sent" in out
    assert "fixing the audience" not in out  # a resume never re-reads it
    assert len(server.deliveries) == 30
    code, out, _ = run(capsys, "status", EXAMPLE_ISSUE)
    assert code == 0 and f"{EXAMPLE_ISSUE}: sent — sent " in out and "sent        30" in out
    db = sqlite3.connect(project / ".digest" / "ledger.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT count(*) FROM recipients WHERE provider_id LIKE '%queued as Q%'").fetchone()[0] == 30


def test_421_mid_run_reconnects_and_loses_nobody(sendproject, capsys):
    project, server, addresses = sendproject
    server.script.max_per_connection = 7  # the 8th MAIL in a session gets 421 and the session closes
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes")
    assert code == 0, out + err
    assert delivered(server) == collections.Counter({a: 1 for a in addresses})
    assert server.connections >= 4


def test_parallel_connections_deliver_each_reader_exactly_once(sendproject, capsys):
    project, server, addresses = sendproject
    server.script.on("DATA", addresses[10], "421 4.3.2 Going away")  # that session closes; retried on a new one
    server.script.on("RCPT", addresses[20], "550 5.1.1 No such user", always=True)
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes", "--connections", "4")
    assert code == 3, out + err  # one reader failed
    assert "(4 connections)" in out
    assert delivered(server) == collections.Counter({a: 1 for i, a in enumerate(addresses) if i != 20})
    assert len({d.connection for d in server.deliveries}) >= 4
    assert server.connections == 5  # 4 opened up front, one reopened after the 421


def test_connections_the_server_turns_away_are_left_out(sendproject, capsys, tcp_proxy_factory, monkeypatch):
    project, server, addresses = sendproject
    proxy = tcp_proxy_factory(server.host, server.port)
    proxy.accept_only = 3  # like a per-client connection limit: the 4th connection is closed at once
    monkeypatch.setenv("DIGEST_SMTP_PORT", str(proxy.port))
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes", "--connections", "6")
    assert code == 0, out + err
    assert "(3 connections)" in out
    assert "the server accepted 3 of 6 connections" in out and "sending over 3" in out
    assert delivered(server) == collections.Counter({a: 1 for a in addresses})
    assert len({d.connection for d in server.deliveries}) == 3


def test_a_server_that_is_down_stops_the_send_before_anything_is_claimed(sendproject, capsys, monkeypatch):
    project, server, addresses = sendproject
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("DIGEST_SMTP_PORT", str(port))
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes")
    assert code == 1
    assert f"cannot talk to SMTP server 127.0.0.1:{port}" in err and "check that the server runs" in err
    code, out, _ = run(capsys, "status", EXAMPLE_ISSUE)
    assert f"{EXAMPLE_ISSUE}: interrupted — interrupted after 0 of 30 sent" in out and "pending     30" in out and "sending now" not in out
    monkeypatch.setenv("DIGEST_SMTP_PORT", str(server.port))
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes")
    assert code == 0, out + err
    assert delivered(server) == collections.Counter({a: 1 for a in addresses})


def test_the_outbox_reports_the_one_connection_it_uses(project, capsys, monkeypatch):
    monkeypatch.setenv("DIGEST_PATHS_SUBSCRIBERS", "list.csv")
    write_list(project / "list.csv", 3)
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes", "--connections", "8")
    assert code == 0, out + err
    assert "via outbox (1 connection)" in out


def test_451_is_retried_later_and_succeeds(sendproject, capsys):
    project, server, addresses = sendproject
    server.script.on("RCPT", "reader004@example.net", "451 4.7.1 Greylisted, try again later")
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes")
    assert code == 0, out + err
    assert delivered(server) == collections.Counter({a: 1 for a in addresses})
    db = sqlite3.connect(project / ".digest" / "ledger.sqlite3")
    assert db.execute("SELECT state, attempts FROM recipients WHERE email='reader004@example.net'").fetchone() == (
        "sent", 2)


def test_550_fails_only_that_recipient_and_suppresses_it(sendproject, capsys):
    project, server, addresses = sendproject
    server.script.on("RCPT", "reader007@example.net", "550 5.1.1 No such user here", always=True)
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes")
    assert code == 3
    assert "failed      1  (1 added to the suppression list)" in out
    others = [a for a in addresses if a != "reader007@example.net"]
    assert delivered(server) == collections.Counter({a: 1 for a in others})
    code, out, _ = run(capsys, "status", EXAMPLE_ISSUE)
    assert "failed (permanent)" in out and "reader007@example.net" in out and "550 5.1.1 No such user" in out
    code, out, _ = run(capsys, "suppress", "list")
    assert "reader007@example.net" in out and "bounce" in out
    # A retry leaves a permanent failure alone.
    code, out, err = run(capsys, "retry", EXAMPLE_ISSUE, "--yes")
    assert "reader007@example.net" not in delivered(server)


def test_drop_during_data_loses_nobody(sendproject, capsys):
    project, server, addresses = sendproject
    server.script.on("DATA", "reader010@example.net", DROP)
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes")
    assert code == 0, out + err
    assert delivered(server) == collections.Counter({a: 1 for a in addresses})


def test_deferred_beyond_retries_then_digest_retry(sendproject, capsys, monkeypatch):
    project, server, addresses = sendproject
    monkeypatch.setenv("DIGEST_SEND_RETRIES", "1")
    server.script.on("RCPT", "reader003@example.net", *["452 4.2.2 Mailbox full"] * 2)
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes")
    assert code == 3 and "deferred    1" in out
    assert "reader003@example.net" not in delivered(server)
    code, out, _ = run(capsys, "status", EXAMPLE_ISSUE)
    assert "deferred" in out and "452 4.2.2 Mailbox full" in out and "digest retry" in out
    code, out, err = run(capsys, "retry", EXAMPLE_ISSUE, "--yes")
    assert code == 0, out + err
    assert delivered(server) == collections.Counter({a: 1 for a in addresses})


def test_suppressed_addresses_are_excluded(sendproject, capsys):
    project, server, addresses = sendproject
    (project / "sup.csv").write_text("email,reason\nreader001@example.net,complained\nREADER005@Example.NET\n")
    code, out, _ = run(capsys, "suppress", "import", "sup.csv")
    assert "2 addresses read from sup.csv: 2 added" in out
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes")
    assert code == 0, out + err
    assert set(delivered(server)) == set(addresses) - {"reader001@example.net", "reader005@example.net"}
    assert "2 suppressed" in out
    code, out, _ = run(capsys, "suppress", "export")
    rows = list(csv.reader(out.splitlines()))
    assert rows[0] == ["email", "reason", "source", "created_at"]
    assert [r[:3] for r in rows[1:]] == [["reader001@example.net", "complained", "import:sup.csv"],
                                         ["READER005@Example.NET", "imported", "import:sup.csv"]]


def test_test_send_does_not_touch_the_ledger(sendproject, capsys):
    project, server, addresses = sendproject
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--test", "me@example.org,reader002@example.net")
    assert code == 0, out + err
    assert sorted(delivered(server)) == ["me@example.org", "reader002@example.net"]
    subjects = {email.message_from_bytes(d.data, policy=email.policy.default)["Subject"] for d in server.deliveries}
    assert subjects == {"[TEST] Innovation Hub News: Learning & Innovation Highlights 2023"}
    assert "the ledger was not touched" in out
    ledger = project / ".digest" / "ledger.sqlite3"
    assert not ledger.exists() or sqlite3.connect(ledger).execute("SELECT count(*) FROM sends").fetchone()[0] == 0
    # the real send afterwards still goes to everyone, reader002 included
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes")
    assert code == 0 and delivered(server)["reader002@example.net"] == 2


def test_resume_after_a_content_change_needs_resume_changed(sendproject, capsys):
    project, server, addresses = sendproject
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes", "--limit", "10")
    assert code == 0, out + err
    assert len(server.deliveries) == 10
    issue = project / "issues" / f"{EXAMPLE_ISSUE}.yaml"
    issue.write_text(issue.read_text(encoding="utf-8").replace("Highlights 2023", "Highlights of 2023", 1),
                     encoding="utf-8")
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes")
    assert code == 1
    assert "the issue's rendered content changed" in err and "--resume-changed" in err
    assert len(server.deliveries) == 10
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes", "--resume-changed")
    assert code == 0, out + err
    assert delivered(server) == collections.Counter({a: 1 for a in addresses})


def test_list_change_with_resume_changed_adds_new_readers(sendproject, capsys):
    project, server, addresses = sendproject
    code, *_ = run(capsys, "send", EXAMPLE_ISSUE, "--yes", "--limit", "5")
    more = write_list(project / "list.csv", 33)
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes")
    assert code == 1 and "the subscriber list (or --tag filter) changed" in err
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes", "--resume-changed")
    assert code == 0, out + err
    assert "3 new recipients added" in out
    assert delivered(server) == collections.Counter({a: 1 for a in more})


def test_missing_merge_field_refuses_before_anything_is_sent(sendproject, capsys):
    project, server, addresses = sendproject
    toml = project / "digest.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('first_name = "friend", ', ""), encoding="utf-8")
    issue = project / "issues" / f"{EXAMPLE_ISSUE}.yaml"
    issue.write_text(issue.read_text(encoding="utf-8").replace("As we look back", "Dear {{ first_name }}, as we look back", 1),
                     encoding="utf-8")
    write_list(project / "list.csv", 5, extra_rows=[["late@example.net", "", "Nofirst", "Org", ""]])
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes")
    assert code == 1
    # The pre-send checks find it (every row, before anything is recorded), naming the row and the field.
    assert "merge-missing-value" in err and "list.csv:7 (late@example.net: no first_name)" in err
    assert server.deliveries == []
    assert not (project / ".digest" / "ledger.sqlite3").exists()  # stopped before the ledger was opened


def test_wrong_password_stops_at_once(project, smtp_server_factory, monkeypatch, capsys):
    server = smtp_server_factory(auth=("news", "right-password"), auth_require_tls=False)
    table = server.smtp_settings(username="news", allow_insecure_auth=True)
    with open(project / "digest.toml", "a", encoding="utf-8") as fh:
        fh.write("\n[smtp]\n" + "".join(f"{k} = {v!r}\n".replace("'", '"').replace("True", "true")
                                         for k, v in table.items()))
    write_list(project / "list.csv", 5)
    monkeypatch.setenv("DIGEST_UNSUBSCRIBE_KEYS", KEYS)
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "wrong")
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes", "--to", "list.csv", "--transport", "smtp")
    assert code == 1
    assert "refused the login of user 'news'" in err
    assert server.deliveries == []
    code, out, _ = run(capsys, "status", EXAMPLE_ISSUE)
    assert "pending     5" in out


def test_unsubscribe_with_a_signed_token(sendproject, capsys):
    from digest.config import load_settings
    from digest.delivery.personalize import Personalizer
    from digest.compose.render import render_issue
    from digest.compose.issue import find_issue, load_issue
    from digest.audience.tokens import KeyRing

    project, server, addresses = sendproject
    settings = load_settings(project / "digest.toml")
    keys = KeyRing.for_settings(settings)
    p = Personalizer(render_issue(load_issue(find_issue(settings, EXAMPLE_ISSUE)), settings), settings, keys)
    token = p.unsubscribe_url("reader009@example.net").split("token=")[1]
    code, out, err = run(capsys, "unsubscribe", "--token", token)
    assert code == 0 and "unsubscribed: reader009@example.net" in out
    code, out, err = run(capsys, "unsubscribe", "--token", token[:-3] + "AAA")
    assert code == 1 and "signature does not match" in err
    code, out, _ = run(capsys, "suppress", "list")
    assert "reader009@example.net" in out and "1 suppressed address" in out


@pytest.mark.slow
def test_builder_process_builds_the_same_messages(sendproject):
    from digest.config import load_settings
    from digest.delivery.options import RunOptions
    from digest.delivery.job import SendJob

    project, server, addresses = sendproject
    settings = load_settings(project / "digest.toml")
    job = SendJob(settings, EXAMPLE_ISSUE)
    report = job.run(RunOptions.from_settings(settings.send, connections=2, build_processes=1))
    assert report.stats.sent == 30 and report.exit_code == 0
    assert delivered(server) == collections.Counter({a: 1 for a in addresses})
    msg = email.message_from_bytes(server.deliveries[0].data, policy=email.policy.default)
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "LEARNING & INNOVATION HIGHLIGHTS 2023" in msg.get_body(("plain",)).get_content()


def test_retry_sends_only_deferred_and_retryable_not_the_untouched_rest(sendproject, capsys, monkeypatch):
    project, server, addresses = sendproject
    monkeypatch.setenv("DIGEST_SEND_RETRIES", "0")
    server.script.on("RCPT", "reader002@example.net", "451 4.7.1 Greylisted")
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes", "--limit", "10")
    assert code == 3 and len(server.deliveries) == 9
    code, out, err = run(capsys, "retry", EXAMPLE_ISSUE, "--yes")
    assert code == 0, out + err
    assert "1 to send" in out
    assert len(server.deliveries) == 10 and delivered(server)["reader002@example.net"] == 1
    code, out, _ = run(capsys, "status", EXAMPLE_ISSUE)
    assert "pending     20" in out


def test_a_refused_sender_is_not_the_readers_fault_and_retry_sends_again(sendproject, capsys):
    project, server, addresses = sendproject
    server.script.on("MAIL", "innovationhub@example.org", "553 5.7.1 Sender address not allowed")
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes")
    assert code == 3, out + err
    assert len(server.deliveries) == 29
    code, out, _ = run(capsys, "status", EXAMPLE_ISSUE)
    assert "553 5.7.1 Sender address not allowed (at MAIL FROM" in out
    code, out, _ = run(capsys, "suppress", "list")
    assert code == 0 and addresses[0] not in out
    code, out, err = run(capsys, "retry", EXAMPLE_ISSUE, "--yes")
    assert code == 0, out + err
    assert "1 to send" in out
    assert delivered(server) == collections.Counter({a: 1 for a in addresses})


def test_send_through_an_http_api_transport(project, monkeypatch, capsys):
    from tests.helpers.fake_providers import FakePostmark

    write_list(project / "list.csv", 30)
    monkeypatch.setenv("DIGEST_UNSUBSCRIBE_KEYS", KEYS)
    monkeypatch.setenv("POSTMARK_TOKEN", "test-token")
    monkeypatch.setenv("DIGEST_SEND_BATCH_SIZE", "10")
    monkeypatch.setenv("DIGEST_SEND_RETRY_BASE_DELAY", "0.01")
    with FakePostmark() as fake:
        with open(project / "digest.toml", "a", encoding="utf-8") as fh:
            fh.write(f'\n[postmark]\nbase_url = "{fake.url}"\nrate_limit_retries = 0\n')
        fake.reject("reader005@example.net", "invalid")
        fake.then(429, headers={"Retry-After": "0"})  # the first batch: rate limited as a whole
        code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes", "--to", "list.csv", "--transport", "postmark")
        assert code == 3, out + err
        assert "sent        29" in out and "failed      1  (1 added to the suppression list)" in out
        accepted = {a: n for a, n in fake.accepted.items() if n}
        assert accepted == {f"reader{i:03d}@example.net": 1 for i in range(30) if i != 5}
    code, out, _ = run(capsys, "suppress", "list")
    assert "reader005@example.net" in out


def test_suppress_import_names_the_bad_line(sendproject, capsys):
    project, server, addresses = sendproject
    (project / "bad.csv").write_text("email,reason\nok@example.org,x\nnot-an-address,y\n", encoding="utf-8")
    code, out, err = run(capsys, "suppress", "import", "bad.csv")
    assert code == 1 and "bad.csv:3: 'not-an-address' is not an email address (" in err
    (project / "latin.csv").write_bytes(b"email\nj\xf6rg@example.org\n")
    code, out, err = run(capsys, "suppress", "import", "latin.csv")
    assert code == 1 and "latin.csv: not UTF-8 text (byte 7)." in err
    code, out, _ = run(capsys, "suppress", "list")
    assert "0 suppressed addresses" in out  # nothing half-imported


def test_a_resume_with_nothing_left_keeps_the_finish_time(sendproject, capsys):
    project, server, addresses = sendproject
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes")
    assert code == 0, out + err
    db = project / ".digest" / "ledger.sqlite3"

    def finished_at():
        return sqlite3.connect(db).execute("SELECT finished_at FROM sends").fetchone()[0]

    first = finished_at()
    time.sleep(0.01)
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes")
    assert code == 0 and "nothing left to send" in out, out + err
    assert finished_at() == first


def test_retry_without_yes_is_a_dry_run_like_send(sendproject, capsys, monkeypatch):
    project, server, addresses = sendproject
    monkeypatch.setenv("DIGEST_SEND_RETRIES", "0")
    server.script.on("RCPT", "reader002@example.net", "451 4.7.1 Greylisted")
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes")
    assert code == 3 and len(server.deliveries) == 29
    code, out, err = run(capsys, "retry", EXAMPLE_ISSUE)
    assert code == 0, out + err
    assert f"Dry run for retrying '{EXAMPLE_ISSUE}' — nothing is sent." in out
    assert "would send   1" in out and "reader002@example.net" in out and "451 4.7.1 Greylisted" in out
    assert "Dry run: nothing was sent. Add --yes to send." in out
    assert len(server.deliveries) == 29
    code, out, err = run(capsys, "retry", EXAMPLE_ISSUE, "--yes")
    assert code == 0, out + err
    assert delivered(server) == collections.Counter({a: 1 for a in addresses})


def test_a_greylisting_server_is_sent_to_in_one_run(sendproject, capsys, monkeypatch):
    project, server, addresses = sendproject
    monkeypatch.setenv("DIGEST_SEND_BATCH_SIZE", "30")  # more deferrals in one batch than max_consecutive_failures
    addresses = write_list(project / "list.csv", 90)
    for address in addresses:  # every first attempt is deferred; the retry is accepted
        server.script.on("RCPT", address, "451 4.7.1 Greylisted, try again later")
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes")
    assert code == 0, out + err
    assert "Stopped" not in err and "sent        90" in out
    assert delivered(server) == collections.Counter({a: 1 for a in addresses})


def test_the_summary_names_the_invalid_rows_and_where_the_outbox_files_went(project, capsys, monkeypatch):
    monkeypatch.setenv("DIGEST_PATHS_SUBSCRIBERS", "list.csv")
    write_list(project / "list.csv", 3, extra_rows=[["not-an-address", "X", "", "", ""], ["bob@", "B", "", "", ""]])
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes")
    assert code == 0, out + err
    assert "2 invalid" in out
    assert "list.csv:5: 'not-an-address' — " in out and "list.csv:6: 'bob@' — " in out
    assert "every skipped row: digest subscribers check list.csv" in out
    assert f"via         outbox: {project / 'out' / 'outbox'} (eml)" in out
    # A resume names them too (they were kept in the ledger with the audience).
    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes")
    assert code == 0 and "list.csv:6: 'bob@' — " in out, out + err
