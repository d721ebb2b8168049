"""One issue's send, end to end: resolve the issue, fix the audience in the ledger, open transports, run.

`SendJob(settings, issue)` renders the issue and prepares the personaliser; then
- `.run(...)` is the real send (or a resume, or `retry=True`), under a per-issue OS lock;
- `dryrun.dry_run(job)` is the dry run: counts and a sample message, nothing written or sent;
- `testsend.send_test(job, addresses)` sends the issue with the test subject prefix, ledger untouched.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

from digest.audience.tokens import GENERATE_HINT, KeyRing
from digest.compose.issue import find_issue, load_issue
from digest.compose.render import render_issue
from digest.delivery.audience import AudienceCounts, stream_audience
from digest.delivery.builders import (
    ProcessBuilder,
    build_processes,
    close_quietly,
    make_build,
)
from digest.delivery.fingerprints import (
    Fingerprints,
    list_fingerprint,
    settings_fingerprint,
)
from digest.delivery.loop import Builder, SendLoop
from digest.delivery.options import RunOptions, RunReport, RunStats
from digest.delivery.personalize import Personalizer
from digest.errors import (
    CheckError,
    ConfigError,
    DigestError,
    LedgerError,
    TransientTransportError,
)
from digest.store.ledger import Ledger
from digest.store.locks import SendLock
from digest.store.rows import DEFERRED, PENDING, SENDING, SENT, RecipientRow, SendRow

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings
    from digest.transports.base import Transport


class SendJob:
    """Everything one `digest send ISSUE` needs, rendered once."""

    def __init__(self, settings: "Settings", issue_ref: str, *, list_path: Path | None = None,
                 tags: Sequence[str] = (), transport: str | None = None):
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

    def schedule_note(self, now: datetime) -> str | None:
        """A by-hand send ignores send_at / not_after: say so when they would have held it back."""
        issue = self.issue
        if issue.not_after is not None and issue.not_after <= now:
            return (f"'{issue.slug}' has not_after {issue.not_after.isoformat()}, which has passed: "
                    "`digest send --due` would never send it; a send by hand still does.")
        if issue.send_at is not None and issue.send_at > now:
            return (f"'{issue.slug}' is scheduled for {issue.send_at.isoformat()}; a send by hand goes out now. "
                    "To send it at its time, leave it to `digest send --due`.")
        return None

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
        """Stream the list: (key, email, name, fields, tags, line) for everyone who gets the issue."""
        return stream_audience(self.list_path, self.tags, self.personalizer, suppressed_keys, counts, check=check)

    def builder(self, personalizer=None, *, needs_mime: bool = True, strip_parts: bool = False
                ) -> Callable[[Sequence[RecipientRow]], list]:
        """rows → OutgoingMessages (MIME built when the transport needs it); a failing row gives its exception."""
        return make_build(personalizer or self.personalizer, needs_mime, strip_parts=strip_parts)

    def run(self, options: RunOptions, *, resume_changed: bool = False, retry: bool = False,
            progress: Callable[[RunStats], None] | None = None,
            on_start: Callable[[RunReport], None] | None = None,
            on_audience: Callable[[Path], None] | None = None, clock=None, sleep=None, stop=None) -> RunReport:
        """Send (start, resume, or with retry=True re-send deferred and transient failures).

        `on_audience(list_path)` is called before a new send reads the whole list into the ledger
        (seconds for a big list), `on_start(report)` once the transports are open; setting `stop`
        (a threading.Event: the CLI's Ctrl-C/SIGTERM handler) stops the run between batches.
        Problems found before anything is claimed raise; an error part-way through comes back as
        `report.error` with the counts of what was done (the CLI prints the summary, then the error).
        """
        self._refuse_dev_key()
        with SendLock(self.settings, self.slug), Ledger.for_settings(self.settings) as ledger:
            send, started_new, added, dropped = self._fix_audience(ledger, resume_changed=resume_changed,
                                                                   retry=retry, on_audience=on_audience)
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
                                   connections_refused=refused, destination=transports[0].describe())
                if on_start:
                    on_start(report)
                to_send = sum(prepared[k] for k in ("in_doubt", "deferred", "failed"))
                to_send += before[PENDING] if not retry else 0
                build = self._build_for(transports[0].needs_mime, options.build_processes, to_send, opened)
                timing = {k: v for k, v in (("clock", clock), ("sleep", sleep)) if v is not None}
                stats = SendLoop(ledger, send.id, transports, build, options, progress=progress,
                                 only_ids=only_ids, stop=stop, **timing).run()
            except BaseException:
                _mark_stopped(ledger, self.slug, send.id)
                raise
            finally:
                for t in opened:
                    close_quietly(t)
            return self._finish(ledger, send.id, report, stats)

    def _refuse_dev_key(self) -> None:
        """A transport that reaches people never sends links signed with the public development key."""
        if self.signer.is_dev and self.transport_class().reaches_people:
            env = self.settings.unsubscribe.keys_env
            raise ConfigError(f"environment variable {env} is not set: the unsubscribe links would be signed "
                              "with the public development key.", GENERATE_HINT.format(var=env))

    def _fix_audience(self, ledger: Ledger, *, resume_changed: bool, retry: bool,
                      on_audience: Callable[[Path], None] | None) -> tuple[SendRow, bool, int, int]:
        """The send row to run: created with its audience, or the existing one (amended when allowed).

        Returns (send, started_new, added, dropped).
        """
        send = ledger.get_send(self.slug)
        fps = self.fingerprints()
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
                recipients=_someone(self.audience(ledger.suppressed_keys(), counts), counts, self.list_path),
                skipped=counts.skipped)
            return send, True, 0, 0
        changes = fps.changes(send)
        if not changes:
            return send, False, 0, 0
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
        return ledger.get_send(self.slug), False, added, dropped  # type: ignore[return-value]

    def _build_for(self, needs_mime: bool, requested: int | None, to_send: int, opened: list) -> Builder:
        """The run's message builder: builder processes when they pay, else in this process."""
        processes = build_processes(requested, to_send, needs_mime)
        if processes:
            builder = ProcessBuilder(self.personalizer, needs_mime, processes)
            opened.append(builder)
            return builder  # type: ignore[return-value]
        # Queued batches hold only the MIME bytes, not the html/text strings as well.
        return self.builder(needs_mime=needs_mime, strip_parts=needs_mime)

    def _finish(self, ledger: Ledger, send_id: int, report: RunReport, stats: RunStats) -> RunReport:
        """Record whether the send is finished and fill the report with the counts after the run."""
        counts_after = ledger.counts(send_id)
        open_rows = counts_after[PENDING] + counts_after[SENDING] + counts_after[DEFERRED]
        ledger.set_send_state(send_id, "finished" if not open_rows and not ledger.failed_transient(send_id)
                              else "stopped")
        report.stats = stats
        report.counts = counts_after
        report.send = ledger.get_send(self.slug)  # type: ignore[assignment]
        report.error = stats.error
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
                close_quietly(t)
            raise
        return transports, refused


def _someone(rows: Iterator[tuple], counts: AudienceCounts, list_path: Path) -> Iterator[tuple]:
    """The audience as it streams into the ledger; an empty one raises, which rolls the new send back.

    The pre-send checks catch this first (audience-empty); this is the ledger's own guarantee that
    a send reaching nobody is never recorded, let alone as finished.
    """
    yield from rows
    if counts.recipients == 0:
        raise CheckError(f"nobody in {list_path} would receive the issue ({counts.suppressed} suppressed, "
                         f"{counts.invalid} invalid, {counts.not_in_audience} without the tags): nothing was "
                         "recorded or sent.", "check the list and the issue's audience: digest check ISSUE")


def _mark_stopped(ledger: Ledger, slug: str, send_id: int) -> None:
    """A run that could not start (server down, login refused) or died is not going on any more.

    Best effort: the ledger itself may be what failed.
    """
    try:
        send = ledger.get_send(slug)
        if send is not None and send.state == "sending":
            ledger.set_send_state(send_id, "stopped")
    except DigestError:
        pass
