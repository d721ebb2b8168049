"""Scheduled sends in-process: issue states, `run_due` with an injected clock, time zones, the CLI.

Messages go to the outbox transport in Maildir format (one new file per message, never overwritten),
so counting files per recipient shows any duplicate.
"""

from __future__ import annotations

import collections
import email
import os
import email.utils
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from freezegun import freeze_time

from digest.cli import cli
from digest.config import load_settings
from digest.store.ledger import Ledger, ledger_path
from digest.store.schema import MIGRATIONS
from digest.status import (DRAFT, DUE, EXPIRED, INTERRUPTED, SCHEDULED, STATE_FAILED, STATE_SENDING, STATE_SENT,
                           describe, issue_statuses)
from digest.store.locks import DueLock
from digest.clock import format_when
from digest.schedule.due import run_due
from digest.delivery.options import RunOptions
from digest.store.locks import SendLock

from tests.helpers.clock import at
from tests.helpers.project import EXAMPLE_ISSUE

AMS = ZoneInfo("Europe/Amsterdam")
KEYS = "k1:hGMyZjEaI80qo8IQ5TXr2aaPPG2WErYXVz6OcNcuX-A"
SLUG = "2024-01-scheduled"
READERS = 30


@pytest.fixture
def proj(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example project with 30 readers, batches of 5 and a Maildir outbox."""
    monkeypatch.setenv("DIGEST_UNSUBSCRIBE_KEYS", KEYS)
    toml = project / "digest.toml"
    text = toml.read_text(encoding="utf-8").replace("connections = 1", "connections = 1\nbatch_size = 5")
    toml.write_text(text + '\n[outbox]\nformat = "maildir"\n', encoding="utf-8")
    rows = ["email,first_name,last_name,organisation,tags"]
    rows += [f"reader{i:02d}@example.org,Reader{i},Test,Org {i},members" for i in range(READERS)]
    (project / "subscribers.example.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return project


def write_issue(project: Path, slug: str = SLUG, *, send_at: str | None = None, not_after: str | None = None,
                extra: str = "") -> Path:
    """A copy of the example issue with scheduling fields."""
    text = (project / "issues" / f"{EXAMPLE_ISSUE}.yaml").read_text(encoding="utf-8")
    fields = ""
    if send_at:
        fields += f"send_at: {send_at}\n"
    if not_after:
        fields += f"not_after: {not_after}\n"
    text = text.replace("date: 2023-12-21\n", f"date: 2023-12-21\n{fields}{extra}", 1)
    path = project / "issues" / f"{slug}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def delivered(project: Path) -> collections.Counter:
    """Messages in the Maildir outbox, per To address."""
    folder = project / "out" / "outbox" / "new"
    counts: collections.Counter = collections.Counter()
    if folder.is_dir():
        for f in folder.iterdir():
            msg = email.message_from_bytes(f.read_bytes())
            counts[email.utils.parseaddr(msg["To"])[1]] += 1
    return counts


def settings_of(project: Path):
    return load_settings(project / "digest.toml")


def due(project: Path, now: datetime, **kw):
    settings = settings_of(project)
    return run_due(settings, now, RunOptions.from_settings(settings.send), **kw)


def entry(project: Path, now: datetime, slug: str = SLUG):
    return next(e for e in issue_statuses(settings_of(project), now) if e.slug == slug)


# --- times ----------------------------------------------------------------------------------------

def test_both_sides_of_the_autumn_change_are_different_instants_and_show_their_zone(proj):
    # 2024-10-27 02:30 happens twice in Amsterdam: first in CEST (+02:00), an hour later in CET (+01:00).
    write_issue(proj, "summer-time", send_at="2024-10-27T02:30+02:00")
    write_issue(proj, "winter-time", send_at="2024-10-27T02:30+01:00")
    now = at("2024-10-27T00:45Z")  # after 02:30 CEST (00:30Z), before 02:30 CET (01:30Z)
    entries = {e.slug: e for e in issue_statuses(settings_of(proj), now)}
    assert entries["summer-time"].send_at == at("2024-10-27T00:30Z")
    assert entries["winter-time"].send_at - entries["summer-time"].send_at == timedelta(hours=1)
    assert entries["summer-time"].state == DUE
    assert entries["winter-time"].state == SCHEDULED
    assert describe(entries["winter-time"], now, AMS) == "Sun 2024-10-27 02:30 CET (+01:00), in 45 min"
    assert format_when(entries["summer-time"].send_at, AMS) == "Sun 2024-10-27 02:30 CEST (+02:00)"

    run = due(proj, now)
    assert [(r.slug, r.outcome) for r in run.results] == [("summer-time", "sent")]
    assert run.next.slug == "winter-time"
    assert sum(delivered(proj).values()) == READERS  # only the CEST one went out


def test_a_time_in_the_spring_gap_is_the_instant_its_offset_says(proj):
    # 02:30 does not exist in Amsterdam on 2024-03-31 (clocks jump 02:00 → 03:00). Written with +01:00
    # it is 01:30 UTC, which the local clock calls 03:30 CEST; it is not due a minute before that.
    write_issue(proj, send_at="2024-03-31T02:30+01:00")
    e = entry(proj, at("2024-03-31T01:29Z"))
    assert e.state == SCHEDULED
    assert describe(e, at("2024-03-31T01:29Z"), AMS) == (
        "Sun 2024-03-31 03:30 CEST (+02:00) = 2024-03-31 02:30+01:00 as written, in 1 min")
    assert due(proj, at("2024-03-31T01:29Z")).results == []
    assert entry(proj, at("2024-03-31T01:30Z")).state == DUE


def test_digest_schedule_lists_states_in_the_local_zone_sorted_by_send_at(proj, monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Amsterdam")
    time.tzset()
    try:
        write_issue(proj, "late", send_at="2024-10-27T02:30+01:00")
        write_issue(proj, "early", send_at="2024-10-27T02:30+02:00", not_after="2024-10-28T00:00+01:00")
        write_issue(proj, "new-york", send_at="2024-10-26T20:00-04:00")
        (proj / "issues" / "broken.yaml").write_text("subject: [unclosed\n", encoding="utf-8")
        with freeze_time("2024-10-25T06:00:00Z"):
            result = CliRunner().invoke(cli, ["schedule"], catch_exceptions=False)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("now Fri 2024-10-25 08:00 CEST (+02:00) · 5 issues in issues")
    rows = [line.split() for line in lines[1:]]
    assert [r[0] for r in rows] == ["new-york", "early", "late", EXAMPLE_ISSUE, "broken"]
    by_slug = {line.split()[0]: line for line in lines[1:]}
    assert "scheduled    Sun 2024-10-27 02:30 CEST (+02:00), in 1 day 18 h · not after Mon 2024-10-28 00:00 CET" \
        in by_slug["early"]
    assert "scheduled    Sun 2024-10-27 02:30 CET (+01:00), in 1 day 19 h" in by_slug["late"]
    assert "Sun 2024-10-27 02:00 CEST (+02:00) = 2024-10-26 20:00-04:00 as written" in by_slug["new-york"]
    assert "draft        no send_at" in by_slug[EXAMPLE_ISSUE]
    # a broken file is a row, not a crash; paths are shown relative to the project
    assert "failed       issues/broken.yaml:2: broken YAML: expected ',' or ']'" in by_slug["broken"]


# --- before, at and after send_at / not_after ------------------------------------------------------

def test_not_sent_before_send_at_then_sent_once_after_it(proj):
    write_issue(proj, send_at="2024-01-11T09:00+01:00", not_after="2024-01-12T09:00+01:00")
    run = due(proj, at("2024-01-11T07:59:59Z"))
    assert run.results == [] and run.exit_code == 0
    assert run.next.slug == SLUG
    assert delivered(proj) == {}
    assert not ledger_path(settings_of(proj)).exists()  # nothing due: no ledger written

    run = due(proj, at("2024-01-11T08:00Z"))
    assert [(r.slug, r.outcome) for r in run.results] == [(SLUG, "sent")]
    assert run.results[0].message == f"{READERS}/{READERS} sent"
    assert run.exit_code == 0
    counts = delivered(proj)
    assert len(counts) == READERS and set(counts.values()) == {1}

    again = due(proj, at("2024-01-11T09:00Z"))  # the next cron run: sent already, nothing to do
    assert again.results == [] and again.exit_code == 0
    assert sum(delivered(proj).values()) == READERS
    e = entry(proj, at("2024-01-11T09:00Z"))
    assert e.state == STATE_SENT and e.reason == f"{READERS}/{READERS} sent"


def test_a_send_started_by_hand_before_send_at_is_resumed_only_from_send_at(proj):
    write_issue(proj, send_at="2024-01-11T09:00+01:00")
    settings = settings_of(proj)
    from digest.delivery.job import SendJob
    SendJob(settings, SLUG).run(RunOptions.from_settings(settings.send, limit=5))
    assert sum(delivered(proj).values()) == 5

    before = at("2024-01-11T07:00Z")
    e = entry(proj, before)
    assert e.state == INTERRUPTED and not e.runnable
    assert describe(e, before, AMS) == ("5/30 sent · started by hand; --due resumes it from "
                                        "Thu 2024-01-11 09:00 CET (+01:00), in 1 h")
    run = due(proj, before)
    assert run.results == [] and run.next.slug == SLUG
    assert sum(delivered(proj).values()) == 5

    run = due(proj, at("2024-01-11T08:00Z"))
    assert [r.outcome for r in run.results] == ["sent"]
    counts = delivered(proj)
    assert len(counts) == READERS and set(counts.values()) == {1}


def test_drafts_are_never_sent(proj):
    write_issue(proj, "a-draft")  # no send_at
    run = due(proj, at("2030-01-01T00:00Z"))
    assert run.results == [] and run.next is None
    assert entry(proj, at("2030-01-01T00:00Z"), "a-draft").state == DRAFT
    assert delivered(proj) == {}


def test_machine_off_at_send_at_sends_at_the_next_run_before_not_after_and_never_after(proj):
    write_issue(proj, "caught-up", send_at="2024-01-11T09:00+01:00", not_after="2024-01-11T18:00+01:00")
    write_issue(proj, "missed", send_at="2024-01-10T09:00+01:00", not_after="2024-01-10T18:00+01:00")
    run = due(proj, at("2024-01-11T12:00Z"))  # the machine comes back at 13:00 CET
    outcomes = {r.slug: r.outcome for r in run.results}
    assert outcomes == {"missed": "expired", "caught-up": "sent"}
    assert "not_after 2024-01-10T18:00:00+01:00 passed before it was sent: never sent" in run.results[0].message
    assert run.exit_code == 3  # cron mails the missed issue once
    assert sum(delivered(proj).values()) == READERS  # only "caught-up"

    later = due(proj, at("2024-01-11T12:05Z"))  # reported once, not at every run
    assert later.results == [] and later.exit_code == 0
    e = entry(proj, at("2024-01-11T12:05Z"), "missed")
    assert e.state == EXPIRED and e.reason == "never sent"


class JumpingClock:
    """Returns `start` until told to jump, then `later` (the send loop asks it between batches)."""

    def __init__(self, start: datetime, later: datetime):
        self.start, self.later, self.jumped = start, later, False

    def __call__(self) -> datetime:
        return self.later if self.jumped else self.start


def test_not_after_reached_mid_send_stops_between_batches_and_leaves_the_rest(proj):
    write_issue(proj, send_at="2024-01-11T09:00+01:00", not_after="2024-01-11T10:00+01:00")
    clock = JumpingClock(at("2024-01-11T08:30Z"), at("2024-01-11T09:00Z"))

    def progress(entry, stats):
        if stats.sent >= 5:
            clock.jumped = True  # not_after passes after the first batch

    run = due(proj, clock.start, clock=clock, progress=progress)
    [result] = run.results
    assert result.outcome == "expired"
    assert "stopped at not_after 2024-01-11T10:00:00+01:00" in result.message
    sent = sum(delivered(proj).values())
    # The first batch, plus at most the one already handed to the transport (1 connection).
    assert 5 <= sent <= 10
    assert set(delivered(proj).values()) == {1}
    assert run.exit_code == 3
    e = entry(proj, clock.later)
    assert e.state == EXPIRED and e.reason == f"{sent}/{READERS} sent, {READERS - sent} not sent"
    assert due(proj, at("2024-01-11T09:30Z")).results == []  # never after not_after, reported once
    assert sum(delivered(proj).values()) == sent


# --- interrupted runs, overlaps --------------------------------------------------------------------

def test_an_interrupted_send_resumes_at_the_next_run_without_duplicates(proj):
    write_issue(proj, send_at="2024-01-11T09:00+01:00")
    stop = threading.Event()

    def progress(entry, stats):
        if stats.sent >= 10:
            stop.set()  # what the CLI's SIGTERM handler does

    run = due(proj, at("2024-01-11T08:00Z"), stop=stop, progress=progress)
    assert [r.outcome for r in run.results] == ["stopped"] and run.exit_code == 3
    first = sum(delivered(proj).values())
    assert 10 <= first < READERS
    e = entry(proj, at("2024-01-11T08:01Z"))
    assert e.state == INTERRUPTED and e.reason == f"{first}/{READERS} sent" and e.runnable

    run = due(proj, at("2024-01-11T08:05Z"))
    assert [r.outcome for r in run.results] == ["sent"] and run.exit_code == 0
    counts = delivered(proj)
    assert len(counts) == READERS and set(counts.values()) == {1}


def test_a_signal_during_one_issue_leaves_the_next_due_issue_for_the_next_run(proj):
    write_issue(proj, "first", send_at="2024-01-11T09:00+01:00")
    write_issue(proj, "second", send_at="2024-01-11T09:05+01:00")
    stop = threading.Event()

    def progress(entry, stats):
        stop.set()

    run = due(proj, at("2024-01-11T08:10Z"), stop=stop, progress=progress)
    assert [(r.slug, r.outcome) for r in run.results] == [("first", "stopped"), ("second", "stopped")]
    assert run.results[1].message == "not started: the run was stopped by a signal; the next run sends it"
    assert run.exit_code == 3
    assert entry(proj, at("2024-01-11T08:11Z"), "second").state == DUE
    assert sum(delivered(proj).values()) <= 10  # first: the batch sent + at most one in flight

    run = due(proj, at("2024-01-11T08:15Z"))
    assert [(r.slug, r.outcome) for r in run.results] == [("first", "sent"), ("second", "sent")]
    counts = delivered(proj)  # both issues went to the same 30 addresses: two messages each, no more
    assert len(counts) == READERS and set(counts.values()) == {2}


def test_an_issue_edited_after_its_send_started_is_not_resumed_unattended(proj):
    path = write_issue(proj, send_at="2024-01-11T09:00+01:00")
    stop = threading.Event()
    run = due(proj, at("2024-01-11T08:00Z"), stop=stop, progress=lambda entry, stats: stop.set())
    first = sum(delivered(proj).values())
    path.write_text(path.read_text(encoding="utf-8").replace("Shift the Power Lab 2.0", "Shift the Power Lab 3.0"),
                    encoding="utf-8")
    run = due(proj, at("2024-01-11T08:05Z"))
    [result] = run.results
    assert result.outcome == "failed" and run.exit_code == 1
    assert "changed; resuming would send a different message" in result.message
    assert f"run by hand: digest send {SLUG} --yes --resume-changed" in result.message
    assert sum(delivered(proj).values()) == first
    e = entry(proj, at("2024-01-11T08:06Z"))
    assert e.state == STATE_FAILED and e.reason.startswith("issue '2024-01-scheduled' was started on")
    assert describe(e, at("2024-01-11T08:06Z"), AMS).startswith(f"{first}/{READERS} sent · issue ")


def test_a_second_run_while_one_holds_the_lock_does_nothing(proj):
    write_issue(proj, send_at="2024-01-11T09:00+01:00")
    settings = settings_of(proj)
    holder = DueLock(settings)
    assert holder.acquire()
    try:
        run = due(proj, at("2024-01-11T08:00Z"))
    finally:
        holder.release()
    assert run.busy is not None and run.results == [] and run.exit_code == 0
    assert delivered(proj) == {}


def test_an_issue_locked_by_a_manual_send_is_skipped_not_sent_twice(proj):
    # The second line of defence: the per-issue lock that `digest send ISSUE --yes` holds.
    write_issue(proj, send_at="2024-01-11T09:00+01:00")
    lock = SendLock(settings_of(proj), SLUG).acquire()
    try:
        run = due(proj, at("2024-01-11T08:00Z"))
    finally:
        lock.release()
    [result] = run.results
    assert result.outcome == "busy" and "already being sent" in result.message
    assert run.exit_code == 0
    assert delivered(proj) == {}


def test_schedule_tells_a_send_running_now_from_an_interrupted_one(proj):
    write_issue(proj, send_at="2024-01-11T09:00+01:00")
    stop = threading.Event()
    run = due(proj, at("2024-01-11T08:00Z"), stop=stop,
              progress=lambda entry, stats: stop.set() if stats.sent >= 10 else None)
    assert [r.outcome for r in run.results] == ["stopped"]
    now = at("2024-01-11T08:01Z")
    e = entry(proj, now)
    assert e.state == INTERRUPTED and e.running is None
    assert "not running (interrupted or stopped): the next --due run resumes it" in describe(e, now)
    lock = SendLock(settings_of(proj), SLUG).acquire()  # as a `digest send` running now holds it
    try:
        e = entry(proj, now)
        assert e.state == STATE_SENDING and e.running == str(os.getpid())
        assert describe(e, now).endswith(f" · sending now (process {os.getpid()})")
    finally:
        lock.release()
    assert entry(proj, now).running is None


# --- failures before sending -----------------------------------------------------------------------

def test_a_render_failure_marks_the_issue_failed_sends_nothing_and_the_fix_sends_it(proj):
    path = write_issue(proj, send_at="2024-01-11T09:00+01:00", extra="template: nosuch\n")
    run = due(proj, at("2024-01-11T08:00Z"))
    [result] = run.results
    assert result.outcome == "failed" and run.exit_code == 1
    assert "template 'nosuch.mjml.j2' not found" in result.message
    assert delivered(proj) == {}
    with Ledger(ledger_path(settings_of(proj)), readonly=True) as ledger:
        assert ledger.get_send(SLUG) is None  # no audience fixed, nothing claimed
    e = entry(proj, at("2024-01-11T08:01Z"))
    assert e.state == STATE_FAILED and "template 'nosuch.mjml.j2' not found" in e.reason and e.runnable
    assert due(proj, at("2024-01-11T08:05Z")).exit_code == 1  # still broken: still failing loudly

    path.write_text(path.read_text(encoding="utf-8").replace("template: nosuch\n", ""), encoding="utf-8")
    run = due(proj, at("2024-01-11T08:10Z"))
    assert [r.outcome for r in run.results] == ["sent"] and run.exit_code == 0
    assert len(delivered(proj)) == READERS
    e = entry(proj, at("2024-01-11T08:11Z"))
    assert e.state == STATE_SENT and e.note is None  # the failure note is gone


def test_an_unreadable_list_marks_the_issue_failed(proj):
    write_issue(proj, send_at="2024-01-11T09:00+01:00")
    (proj / "subscribers.example.csv").unlink()
    run = due(proj, at("2024-01-11T08:00Z"))
    [result] = run.results
    assert result.outcome == "failed" and run.exit_code == 1
    assert "subscribers.example.csv" in result.message
    assert entry(proj, at("2024-01-11T08:01Z")).state == STATE_FAILED


def test_a_missing_signing_key_is_a_failure_not_a_send_with_the_dev_key(proj, monkeypatch):
    monkeypatch.delenv("DIGEST_UNSUBSCRIBE_KEYS")
    # A transport that reaches people (the outbox may use the dev key: nobody receives its files).
    for key, value in {"SEND_TRANSPORT": "smtp", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": "9",
                       "SMTP_SECURITY": "none"}.items():
        monkeypatch.setenv(f"DIGEST_{key}", value)
    write_issue(proj, send_at="2024-01-11T09:00+01:00")
    run = due(proj, at("2024-01-11T08:00Z"))
    assert [r.outcome for r in run.results] == ["failed"]
    assert "DIGEST_UNSUBSCRIBE_KEYS" in run.results[0].message
    assert delivered(proj) == {}


def test_a_broken_issue_file_is_listed_as_failed_and_fails_the_run_only_if_it_may_be_scheduled(proj):
    (proj / "issues" / "half-written.yaml").write_text("subject: Hello\ntitle: [oops\n", encoding="utf-8")
    now = at("2024-01-11T08:00Z")
    e = entry(proj, now, "half-written")
    assert e.state == STATE_FAILED and "half-written.yaml:3: broken YAML" in e.reason
    run = due(proj, now)
    assert run.results == [] and run.exit_code == 0 and [b.slug for b in run.broken_drafts] == ["half-written"]

    (proj / "issues" / "scheduled-broken.yaml").write_text(
        "subject: Hello\nsend_at: 2024-01-11T09:00+01:00\nsections: oops\n", encoding="utf-8")
    run = due(proj, now)
    [result] = run.results
    assert result.slug == "scheduled-broken" and result.outcome == "failed" and run.exit_code == 1
    assert "scheduled-broken.yaml:3: 'sections' must be a list" in result.message


def test_naive_now_is_refused(proj):
    with pytest.raises(ValueError, match="aware"):
        issue_statuses(settings_of(proj), datetime(2024, 1, 11, 9, 0))


def _version_1_ledger(path: Path, *, with_notes_table: bool) -> None:
    """A ledger as the release before the schedule_notes migration wrote it."""
    import sqlite3

    from digest.store.schema import MIGRATIONS, split_sql

    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    for statement in split_sql(MIGRATIONS[0]) + (split_sql(MIGRATIONS[1]) if with_notes_table else []):
        db.execute(statement)
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()


def test_schedule_notes_on_a_ledger_without_the_table(proj):
    path = ledger_path(settings_of(proj))
    _version_1_ledger(path, with_notes_table=False)  # written before any --due run
    with Ledger(path, readonly=True) as book:  # `digest schedule` reads it as it is
        assert book.notes() == {}
    with Ledger(path) as book:  # the first write upgrades it
        book.set_note("x", "failed", "first", at("2024-01-11T08:00Z"))
        book.set_note("x", "failed", "second", at("2024-01-11T09:00Z"))
        note = book.notes()["x"]
    assert (note.reason, note.first_at, note.updated_at) == ("second", "2024-01-11T08:00:00Z", "2024-01-11T09:00:00Z")


def test_a_ledger_whose_notes_table_an_older_digest_created_upgrades_and_keeps_its_notes(proj):
    import sqlite3

    path = ledger_path(settings_of(proj))
    _version_1_ledger(path, with_notes_table=True)  # the old ScheduleLedger created it outside the migrations
    db = sqlite3.connect(path)
    db.execute("INSERT INTO schedule_notes VALUES ('x', 'failed', 'kept', '2024-01-11T08:00:00Z', "
               "'2024-01-11T08:00:00Z')")
    db.commit()
    db.close()
    with Ledger(path) as book:
        assert book.notes()["x"].reason == "kept"
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


# --- the CLI -----------------------------------------------------------------------------------

def test_send_due_with_nothing_due_prints_one_line_and_exits_0(proj):
    write_issue(proj, send_at="2024-01-11T09:00+01:00")
    with freeze_time("2024-01-09T06:00:00Z"):
        result = CliRunner().invoke(cli, ["send", "--due"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1
    assert lines[0].endswith(f"nothing due (next: {SLUG} at "
                             f"{format_when(at('2024-01-11T09:00+01:00'))}, in 2 days 2 h)")


def test_send_due_takes_no_issue_and_send_still_needs_one(proj):
    result = CliRunner().invoke(cli, ["send", "--due", EXAMPLE_ISSUE])
    assert result.exit_code == 2 and "--due sends every due issue as its file says; it takes no ISSUE" in result.output
    result = CliRunner().invoke(cli, ["send", "--due", "--tag", "members"])
    assert result.exit_code == 2 and "it takes no --tag" in result.output
    result = CliRunner().invoke(cli, ["send"])
    assert result.exit_code == 2 and "Missing argument 'ISSUE'" in result.output


def test_send_due_exit_code_and_error_line_on_a_render_failure(proj):
    now = datetime.now(timezone.utc)
    write_issue(proj, send_at=(now - timedelta(minutes=1)).isoformat(timespec="seconds"), extra="template: nosuch\n")
    result = CliRunner().invoke(cli, ["send", "--due"], catch_exceptions=False)
    assert result.exit_code == 1
    assert f"{SLUG}: failed — template 'nosuch.mjml.j2' not found" in result.output
    assert delivered(proj) == {}
