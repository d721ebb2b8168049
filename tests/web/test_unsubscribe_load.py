"""Hundreds of one-click POSTs at once while a real `digest send` writes the same ledger: none lost, no 5xx,
no "database is locked", and the running send skips every address unsubscribed before its batch was claimed."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers.project import EXAMPLE_ISSUE
from tests.helpers.send import KEYS, write_list
from tests.helpers.web import ONE_CLICK, request, running_server, token_for

pytestmark = pytest.mark.slow

READERS = 3000
POSTS = 400


def test_concurrent_one_click_posts_while_a_send_runs(project, settings, monkeypatch):
    addresses = write_list(project / "list.csv", READERS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(DIGEST_UNSUBSCRIBE_KEYS=KEYS, DIGEST_PATHS_SUBSCRIBERS="list.csv", DIGEST_SEND_BATCH_SIZE="20",
               PYTHONUNBUFFERED="1")
    # Every 7th reader from the 100th on unsubscribes: most of them before the send reaches them.
    targets = addresses[100::7][:POSTS]
    ledger_file = project / ".digest" / "ledger.sqlite3"
    with running_server(settings, monkeypatch, threads=8) as srv:
        send = subprocess.Popen([sys.executable, "-m", "digest", "send", EXAMPLE_ISSUE, "--yes", "--rate", "600"],
                                cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not (ledger_file.exists() and _count(ledger_file, "SELECT count(*) FROM recipients WHERE state='sent'")):
            assert send.poll() is None and time.monotonic() < deadline, send.communicate()
            time.sleep(0.02)

        def post(email: str) -> tuple[int, str]:
            status, _, body = request(f"{srv.url}/unsubscribe?token={token_for(settings, email)}", "POST",
                                      "List-Unsubscribe=One-Click", ONE_CLICK)
            return status, body

        with ThreadPoolExecutor(max_workers=48) as pool:
            answers = list(pool.map(post, targets))
        still_sending = send.poll() is None
        out, err = send.communicate(timeout=120)
    assert send.returncode == 0, out + err
    assert still_sending, "the send had finished before the POSTs were all answered: raise READERS"
    assert [status for status, _ in answers] == [200] * len(targets), {s for s, _ in answers}
    assert "locked" not in err.lower() and "locked" not in out.lower()
    db = sqlite3.connect(ledger_file)
    try:
        suppressed = dict(db.execute("SELECT email, created_at FROM suppressions WHERE source='one-click'"))
        assert set(suppressed) == set(targets)  # nothing lost
        rows = {email: (state, claimed) for email, state, claimed in
                db.execute("SELECT email, state, claimed_at FROM recipients")}
    finally:
        db.close()
    skipped = [e for e in targets if rows[e][0] == "skipped"]
    sent_anyway = [e for e in targets if rows[e][0] == "sent"]
    assert len(skipped) + len(sent_anyway) == len(targets)
    assert skipped, "the running send skipped nobody"
    # One sent anyway was claimed (in its batch) no later than the unsubscribe was recorded.
    for email in sent_anyway:
        assert rows[email][1] <= suppressed[email], (email, rows[email], suppressed[email])
    others = [e for e in addresses if e not in suppressed]
    assert all(rows[e][0] == "sent" for e in others)


def _count(path, sql: str) -> int:
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute(sql).fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0
