"""A TLS problem found when the send connects stops the run at once and marks nobody failed."""

from __future__ import annotations

import sqlite3

import pytest

from tests.helpers.project import EXAMPLE_ISSUE
from tests.helpers.send import KEYS, run, write_list

pytestmark = pytest.mark.slow


def test_untrusted_certificate_stops_the_send_before_anyone_is_marked(project, smtp_server_factory, tls_cert,
                                                                      monkeypatch, capsys):
    server = smtp_server_factory(tls="starttls", cert=tls_cert)
    table = server.smtp_settings()
    table.pop("ca_file", None)  # the test CA is not trusted: that is the point
    table["security"] = "starttls"
    with open(project / "digest.toml", "a", encoding="utf-8") as fh:
        fh.write("\n[smtp]\n" + "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in table.items()))
    monkeypatch.setenv("DIGEST_UNSUBSCRIBE_KEYS", KEYS)
    monkeypatch.setenv("DIGEST_SEND_TRANSPORT", "smtp")
    monkeypatch.setenv("DIGEST_SEND_BATCH_SIZE", "5")
    monkeypatch.setenv("DIGEST_PATHS_SUBSCRIBERS", "list.csv")
    write_list(project / "list.csv", 20)

    code, out, err = run(capsys, "send", EXAMPLE_ISSUE, "--yes")
    assert code != 0
    assert "TLS certificate not trusted" in out + err
    assert server.deliveries == []
    db = sqlite3.connect(project / ".digest" / "ledger.sqlite3")
    states = dict(db.execute("SELECT state, count(*) FROM recipients GROUP BY state").fetchall())
    assert states == {"pending": 20}, states
