"""One issue's send, end to end: render once, fix the audience in the ledger, open transports, run.

`SendJob(settings, issue)` renders the issue and prepares the personaliser; then
- `.preview()`     the dry run: counts and a sample message, nothing written or sent;
- `.run(...)`      the real send (or a resume, or `retry=True`), under a per-issue OS lock;
- `.send_test(..)` the issue with the test subject prefix to a few addresses, ledger untouched.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

from digest.store.locks import FileLock
from digest.errors import ConfigError, DigestError, LedgerError, SendLockedError, TransientTransportError
from digest.store.ledger import DEFERRED, PENDING, SENDING, SENT, Ledger, RecipientRow, SendRow, ledger_path
from digest.delivery.loop import RunOptions, RunStats, SendLoop

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings
    from digest.audience.subscribers import Subscriber
    from digest.transports.base import OutgoingMessage, SendResult, Transport


# --- the per-issue lock ---------------------------------------------------------------------------

class SendLock(FileLock):
    """The per-issue lock: <state>/locks/<slug>.lock, so two sends of one issue never overlap."""

    def __init__(self, settings: "Settings", slug: str):
        super().__init__(settings.path("state") / "locks" / f"{slug}.lock")
        self.slug = slug

    def acquire(self) -> "SendLock":
        """Take the lock or raise SendLockedError at once (never waits)."""
        if not self.try_acquire():
            raise SendLockedError(
                f"issue '{self.slug}' is already being sent (process {self.holder or 'another process'} "
                f"holds {self.path}).",
                f"wait for it to finish, or look at it with: digest status {self.slug}")
        return self

    def __enter__(self) -> "SendLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


# --- fingerprints ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Fingerprints:
    """What a send was started with: a change to any of these makes resuming need --resume-changed."""

    content: str
    list: str
    settings: str

    def changes(self, send: SendRow) -> list[str]:
        """Names of the parts that differ from the send in the ledger."""
        changed = []
        if self.content != send.content_fp:
            changed.append("the issue's rendered content")
        if self.list != send.list_fp:
            changed.append("the subscriber list (or --tag filter)")
        if self.settings != send.settings_fp:
            changed.append("the newsletter settings ([newsletter], [unsubscribe], [merge])")
        return changed


def list_fingerprint(path: Path, tags: Sequence[str]) -> str:
    """sha256 of the list file's bytes plus the audience filter (read in 1 MB chunks)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    except OSError as exc:
        from digest.errors import SubscriberError
        raise SubscriberError(f"cannot read subscriber list {path}: {exc.strerror}.",
                              "check [paths] subscribers or --to") from exc
    h.update(b"\0tags:" + ",".join(sorted(t.casefold() for t in tags)).encode("utf-8"))
    return h.hexdigest()


def settings_fingerprint(settings: "Settings") -> str:
    """sha256 of the settings that change what each recipient receives."""
    data = {
        "newsletter": dataclasses.asdict(settings.newsletter),
        "unsubscribe": dataclasses.asdict(settings.unsubscribe),
        "merge": dataclasses.asdict(settings.merge),
        "bounce_address": settings.send.bounce_address,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode("utf-8")).hexdigest()


# --- audience ---------------------------------------------------------------------------------

@dataclass
class AudienceCounts:
    """What fixing (or previewing) the audience found."""

    recipients: int = 0
    suppressed: int = 0
    invalid: int = 0
    duplicates: int = 0
    not_in_audience: int = 0   # valid subscribers without any of the wanted tags
    rows: int = 0

    def skipped(self) -> dict[str, int]:
        """What the audience left out, as recorded in the ledger's send row."""
        return {"suppressed": self.suppressed, "invalid": self.invalid, "duplicates": self.duplicates,
                "not_in_audience": self.not_in_audience}


def subscriber_from_row(row: RecipientRow) -> "Subscriber":
    """Rebuild a Subscriber from its ledger row (resume never re-reads the CSV)."""
    from digest.audience.subscribers import Subscriber

    return Subscriber(email=row.email, name=row.name, fields=row.fields, tags=frozenset(row.tags), line=row.line,
                      key=row.key)


# --- building messages ---------------------------------------------------------------------------

def make_build(personalizer, needs_mime: bool, *, strip_parts: bool = False) -> Callable[[Sequence[RecipientRow]], list]:
    """rows → one OutgoingMessage per row (MIME built when needed), or the DigestError for that row.

    `strip_parts` drops the html/text strings once the MIME bytes hold them (only the bytes need to
    travel back from a builder process).
    """
    from digest.delivery.mime import MimeSkeleton

    skeleton = MimeSkeleton(from_addr=personalizer.from_addr, reply_to=personalizer.reply_to)
    replace = dataclasses.replace

    def build(rows: Sequence[RecipientRow]) -> list:
        out: list = []
        for row in rows:
            try:
                msg = personalizer.message_for(subscriber_from_row(row), row.id)
                if needs_mime:
                    mime = skeleton.build(msg)
                    msg = replace(msg, mime=mime, html="", text="") if strip_parts else replace(msg, mime=mime)
                out.append(msg)
            except DigestError as exc:
                out.append(exc)
        return out
    return build


_PROCESS_BUILD: list = []  # the build function inside a builder process


def _init_process(personalizer, needs_mime: bool, parent: int) -> None:
    import signal
    import threading
    import time

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the sending process, which stops cleanly
    _PROCESS_BUILD[:] = [make_build(personalizer, needs_mime, strip_parts=needs_mime)]

    def exit_with_parent() -> None:
        # A builder holds both ends of its task pipe, so it never sees EOF: if `digest send` is
        # killed (-9, OOM), the builder would wait forever. It leaves when its parent is gone.
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=exit_with_parent, daemon=True, name="digest-builder-watch").start()


def _build_in_process(rows: Sequence[RecipientRow]) -> list:
    return _PROCESS_BUILD[0](rows)


class ProcessBuilder:
    """Builds messages in `processes` separate processes while the sending threads send.

    Personalising and MIME encoding are CPU-bound and hold the GIL; in another process they run
    on another core. 'spawn' (not fork) so no child inherits the ledger's SQLite connection or the
    send lock. The SendLoop calls `.submit(rows)` and gets a Future.
    """

    def __init__(self, personalizer, needs_mime: bool, processes: int):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.processes = processes
        self._pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_init_process,
                                         initargs=(personalizer, needs_mime, os.getpid()))

    def submit(self, rows: Sequence[RecipientRow]):
        """Start building one batch; a Future of the build's list."""
        return self._pool.submit(_build_in_process, list(rows))

    def close(self) -> None:
        """Stop the builder processes."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def build_processes(requested: int | None, to_send: int, needs_mime: bool) -> int:
    """How many builder processes to use: `requested` if given, else 1 when it pays (see bench/send.py)."""
    if requested is not None:
        return max(0, requested)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    # Starting a process costs ~0.3 s (spawn + imports + unpickling the rendered issue): only worth it
    # for a few thousand messages and when there is a second core to build on.
    return 1 if cpus >= 2 and needs_mime and to_send >= 2000 else 0


def _close_quietly(closable) -> None:
    """Close a transport or builder; a failure to close must not hide the run's outcome."""
    try:
        closable.close()
    except Exception:  # noqa: BLE001
        pass


# --- results --------------------------------------------------------------------------------------

@dataclass
class Preview:
    """The dry run: what `digest send --yes` would do."""

    slug: str
    subject: str
    from_addr: str
    transport: str
    list_path: Path
    tags: tuple[str, ...]
    counts: AudienceCounts
    already_sent: int = 0
    to_send: int = 0
    send: SendRow | None = None
    ledger_counts: dict | None = None
    changes: list[str] = field(default_factory=list)
    sample: bytes | None = None
    sample_to: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class RunReport:
    """What a real run did, for the summary and the exit code."""

    send: SendRow
    stats: RunStats
    counts: dict[str, int]         # ledger counts after the run
    skipped: dict[str, int]        # at audience time: suppressed, invalid, duplicates, not in audience
    already_sent: int              # sent by earlier runs
    prepared: dict[str, int]       # prepare_run: in_doubt, deferred, failed, suppressed
    started_new: bool
    added: int = 0
    dropped: int = 0
    connections: int = 1           # transports (connections) the run sends over
    connections_refused: str | None = None  # why the server turned away some of those asked for

    @property
    def exit_code(self) -> int:
        """0 all sent; 3 something failed or is deferred; 4 the run stopped early (resumable)."""
        if self.stats.stopped:
            return 4
        if self.stats.failed or self.stats.deferred or self.counts[DEFERRED]:
            return 3
        return 0


# --- the job --------------------------------------------------------------------------------------

class SendJob:
    """Everything one `digest send ISSUE` needs, rendered once."""

    def __init__(self, settings: "Settings", issue_ref: str, *, list_path: Path | None = None,
                 tags: Sequence[str] = (), transport: str | None = None):
        from digest.audience.tokens import KeyRing
        from digest.compose.issue import find_issue, load_issue
        from digest.delivery.personalize import Personalizer
        from digest.compose.render import render_issue

        self.settings = settings
        self.issue = load_issue(find_issue(settings, issue_ref))
        self.slug = self.issue.slug
        self.list_path = Path(list_path) if list_path else settings.path("subscribers")
        self.tags = tuple(tags) or tuple(self.issue.audience)
        self.transport_name = transport or settings.send.transport
        self.rendered = render_issue(self.issue, settings)
        # The development key is fine for a dry run or a test message; run() refuses it.
        self.signer = KeyRing.for_settings(settings, allow_dev_key=True)
        self.personalizer = Personalizer(self.rendered, settings, self.signer, source=self.list_path)

    # -- pieces ----------------------------------------------------------------------------------

    def fingerprints(self) -> Fingerprints:
        """The fingerprints of what would be sent now."""
        return Fingerprints(self.rendered.fingerprint, list_fingerprint(self.list_path, self.tags),
                            settings_fingerprint(self.settings))

    def transport_class(self):
        """The Transport subclass this job sends with (--transport, else [send] transport)."""
        from digest.transports import transport_class

        return transport_class(self.transport_name)

    def make_transports(self, connections: int) -> list["Transport"]:
        """N transports of one connection each when the transport can use several, else one."""
        cls = self.transport_class()
        n = connections if cls.supports_connections else 1
        return [cls(self.settings, connections=1) for _ in range(n)]

    def audience(self, suppressed_keys: set[str], counts: AudienceCounts, *, check: bool = True
                 ) -> Iterator[tuple]:
        """Stream the list: (key, email, name, fields, tags, line) for everyone who gets the issue.

        Every kept row is checked for missing merge fields (MergeError names field and line) before
        the caller commits anything.
        """
        from digest.audience.subscribers import ListReport, read_subscribers

        report = ListReport()
        for sub in read_subscribers(self.list_path, report=report, tags=self.tags or None):
            if sub.key in suppressed_keys:
                counts.suppressed += 1
                continue
            if check:
                self.personalizer.check(sub)
            counts.recipients += 1
            yield (sub.key, sub.email, sub.name, dict(sub.fields), tuple(sorted(sub.tags)), sub.line)
        counts.invalid, counts.duplicates = report.invalid, report.duplicates
        counts.not_in_audience, counts.rows = report.filtered_out, report.rows

    def builder(self, personalizer=None, *, needs_mime: bool = True, strip_parts: bool = False
                ) -> Callable[[Sequence[RecipientRow]], list]:
        """rows → OutgoingMessages (MIME built when the transport needs it); a failing row gives its exception."""
        return make_build(personalizer or self.personalizer, needs_mime, strip_parts=strip_parts)

    # -- dry run ---------------------------------------------------------------------------------

    def preview(self) -> Preview:
        """Count the audience and build one sample message; writes nothing, sends nothing."""
        from digest.delivery.mime import build_mime

        counts = AudienceCounts()
        send: SendRow | None = None
        ledger_counts = None
        suppressed: set[str] = set()
        notes: list[str] = []
        if self.signer.is_dev:
            notes.append(f"{self.settings.unsubscribe.keys_env} is not set: the sample's unsubscribe link uses the "
                         "development key; a real send (--yes) through a transport that reaches people "
                         "refuses to run until it is set")
        path = ledger_path(self.settings)
        if path.exists():
            with Ledger(path, readonly=True) as ledger:
                suppressed = ledger.suppressed_keys()
                send = ledger.get_send(self.slug)
                if send is not None:
                    ledger_counts = ledger.counts(send.id)
        try:
            transport = self.transport_class()(self.settings, connections=1).describe()
        except DigestError as exc:
            transport = f"{self.transport_name} — NOT USABLE: {exc.message}"
        first = None
        for row in self.audience(suppressed, counts):
            if first is None:
                first = row
        sample = None
        sample_to = ""
        if first is not None:
            row = RecipientRow(id=0, key=first[0], email=first[1], name=first[2], fields=first[3],
                               tags=first[4], line=first[5])
            msg = self.personalizer.message_for(subscriber_from_row(row), 0)
            sample, sample_to = build_mime(msg), msg.to_email
        preview = Preview(slug=self.slug, subject=self.issue.subject, from_addr=self.personalizer.from_addr,
                          transport=transport, list_path=self.list_path, tags=self.tags, counts=counts,
                          send=send, ledger_counts=ledger_counts, sample=sample, sample_to=sample_to,
                          notes=notes)
        if send is not None and ledger_counts is not None:
            preview.already_sent = ledger_counts[SENT]
            preview.to_send = (ledger_counts[PENDING] + ledger_counts[SENDING] + ledger_counts[DEFERRED])
            preview.changes = self.fingerprints().changes(send)
        else:
            preview.to_send = counts.recipients
        return preview

    # -- the real send ---------------------------------------------------------------------------

    def run(self, options: RunOptions, *, resume_changed: bool = False, retry: bool = False,
            progress: Callable[[RunStats], None] | None = None,
            on_start: Callable[[RunReport], None] | None = None,
            on_audience: Callable[[Path], None] | None = None, clock=None, sleep=None) -> RunReport:
        """Send (start, resume, or with retry=True re-send deferred and transient failures).

        `on_audience(list_path)` is called before a new send reads the whole list into the ledger
        (seconds for a big list), `on_start(report)` once the transports are open.
        """
        from digest.audience.tokens import GENERATE_HINT

        if self.signer.is_dev and self.transport_class().reaches_people:
            env = self.settings.unsubscribe.keys_env
            raise ConfigError(f"environment variable {env} is not set: the unsubscribe links would be signed "
                              "with the public development key.",
                              GENERATE_HINT.format(var=env))
        with SendLock(self.settings, self.slug), Ledger.for_settings(self.settings) as ledger:
            send = ledger.get_send(self.slug)
            fps = self.fingerprints()
            started_new = False
            added = dropped = 0
            if send is None:
                if retry:
                    raise LedgerError(f"issue '{self.slug}' has never been sent: nothing to retry.",
                                      f"send it first: digest send {self.slug} --yes")
                counts = AudienceCounts()
                if on_audience:
                    on_audience(self.list_path)
                send = ledger.create_send(
                    self.slug, content_fp=fps.content, list_fp=fps.list, settings_fp=fps.settings,
                    list_path=str(self.list_path.resolve()), subject=self.issue.subject,
                    recipients=self.audience(ledger.suppressed_keys(), counts), skipped=counts.skipped)
                started_new = True
            else:
                changes = fps.changes(send)
                if changes:
                    if not resume_changed:
                        raise LedgerError(
                            f"issue '{self.slug}' was started on {send.started_at} and since then "
                            f"{' and '.join(changes)} changed; resuming would send a different message "
                            f"to the rest of the list.",
                            "if that is what you want, run the same command with --resume-changed "
                            f"(see what is left with: digest status {self.slug})")
                    recipients = None
                    counts = AudienceCounts()
                    if fps.list != send.list_fp:
                        recipients = self.audience(ledger.suppressed_keys(), counts)
                    added, dropped = ledger.amend_send(
                        send.id, content_fp=fps.content, list_fp=fps.list, settings_fp=fps.settings,
                        list_path=str(self.list_path.resolve()), subject=self.issue.subject, recipients=recipients,
                        skipped=counts.skipped if recipients is not None else send.skipped)
                    send = ledger.get_send(self.slug)
            before = ledger.counts(send.id)
            opened: list = []
            try:
                transports, refused = self._open_transports(options.connections)
                opened.extend(transports)
                only_ids = ledger.retry_ids(send.id) if retry else None
                prepared = ledger.prepare_run(send.id, retry_failed=retry)
                report = RunReport(send=send, stats=RunStats(), counts=before, skipped=send.skipped,
                                   already_sent=before[SENT], prepared=prepared, started_new=started_new,
                                   added=added, dropped=dropped, connections=len(transports),
                                   connections_refused=refused)
                if on_start:
                    on_start(report)
                kw = {}
                if clock is not None:
                    kw["clock"] = clock
                if sleep is not None:
                    kw["sleep"] = sleep
                needs_mime = transports[0].needs_mime
                to_send = sum(prepared[k] for k in ("in_doubt", "deferred", "failed"))
                to_send += before[PENDING] if not retry else 0
                processes = build_processes(options.build_processes, to_send, needs_mime)
                if processes:
                    builder = ProcessBuilder(self.personalizer, needs_mime, processes)
                    opened.append(builder)
                    build = builder
                else:
                    # Queued batches hold only the MIME bytes, not the html/text strings as well.
                    build = self.builder(needs_mime=needs_mime, strip_parts=needs_mime)
                loop = SendLoop(ledger, send.id, transports, build, options, progress=progress,
                                only_ids=only_ids, **kw)
                stats = loop.run()
            except BaseException:
                # It could not start (server down, login refused) or died with an error: the send is
                # not going on any more, whatever state it was left in (best effort: the ledger itself
                # may be what failed).
                try:
                    if ledger.get_send(self.slug).state == "sending":  # type: ignore[union-attr]
                        ledger.set_send_state(send.id, "stopped")
                except DigestError:
                    pass
                raise
            finally:
                for t in opened:
                    _close_quietly(t)
            counts_after = ledger.counts(send.id)
            open_rows = counts_after[PENDING] + counts_after[SENDING] + counts_after[DEFERRED]
            ledger.set_send_state(send.id, "finished" if not open_rows and not ledger.failed_transient(send.id)
                                  else "stopped")
            report.stats = stats
            report.counts = counts_after
            report.send = ledger.get_send(self.slug)
            if stats.error is not None:
                stats.error.report = report  # type: ignore[attr-defined]  # the CLI prints the summary too
                raise stats.error
            return report

    def _open_transports(self, connections: int) -> tuple[list["Transport"], str | None]:
        """Open the run's transports, so connection and login problems show before anything is claimed.

        The first must open. Extra connections the server turns away for now (a per-client
        connection limit, a 421 at the greeting) are left out; the run goes on with the ones it got,
        and the reason comes back for the start-up message. On any other error the ones already
        open are closed before it is raised.
        """
        transports: list["Transport"] = []
        refused = None
        try:
            for t in self.make_transports(connections):
                try:
                    t.open()
                except TransientTransportError as exc:
                    if not transports:
                        raise
                    t.close()
                    refused = exc.message.rstrip(".")
                    continue
                transports.append(t)
        except BaseException:
            for t in transports:
                _close_quietly(t)
            raise
        return transports, refused

    # -- test sends ------------------------------------------------------------------------------

    def send_test(self, addresses: Sequence[str]) -> list[tuple["OutgoingMessage", "SendResult"]]:
        """Send the issue with the test subject prefix to `addresses`; the ledger is not touched."""
        from digest.delivery.personalize import Personalizer
        from digest.audience.subscribers import Subscriber, read_subscribers

        personalizer = Personalizer(self.rendered, self.settings, self.signer,
                                    subject_prefix=self.settings.send.test_subject_prefix, source=self.list_path)
        wanted = {self._key(a): a for a in addresses}
        found: dict[str, Subscriber] = {}
        first: Subscriber | None = None
        if self.list_path.exists():
            for sub in read_subscribers(self.list_path, tags=self.tags or None):
                first = first or sub
                if sub.key in wanted and sub.key not in found:
                    found[sub.key] = sub
                if len(found) == len(wanted):
                    break
        rows = []
        for i, (key, address) in enumerate(wanted.items(), start=1):
            sub = found.get(key)
            if sub is None:
                # Not on the list: personalise as the first subscriber would be, addressed to the tester.
                fields = dict(first.fields) if first else {}
                sub = Subscriber(email=address, name=first.name if first else "", fields=fields, tags=frozenset(),
                                 line=0)
            rows.append(RecipientRow(id=i, key=key, email=sub.email if key in found else address, name=sub.name,
                                     fields=dict(sub.fields), tags=tuple(sub.tags), line=sub.line))
        cls = self.transport_class()
        transport = cls(self.settings, connections=1)
        build = self.builder(personalizer, needs_mime=transport.needs_mime)
        built = build(rows)
        failed = [m for m in built if isinstance(m, BaseException)]
        if failed:
            raise failed[0]
        with transport:
            results = transport.send_batch(built)
        return list(zip(built, results))

    @staticmethod
    def _key(address: str) -> str:
        from digest.audience.addresses import address_key

        return address_key(address)
