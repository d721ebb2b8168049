"""What a run is told (RunOptions) and what it reports (RunStats, RunReport)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from digest.sections import SendSettings
from digest.store.rows import DEFERRED, SendRow

_SEND_DEFAULTS = SendSettings()  # one place for the defaults: digest.toml's [send] section


@dataclass
class RunOptions:
    """How one run sends (from settings [send] and the command line)."""

    batch_size: int = _SEND_DEFAULTS.batch_size
    connections: int = _SEND_DEFAULTS.connections
    rate: float = _SEND_DEFAULTS.rate
    retries: int = _SEND_DEFAULTS.retries
    retry_base_delay: float = _SEND_DEFAULTS.retry_base_delay
    retry_max_delay: float = _SEND_DEFAULTS.retry_max_delay
    max_consecutive_failures: int = _SEND_DEFAULTS.max_consecutive_failures
    limit: int | None = None  # most recipients to take from `pending` in this run
    build_processes: int | None = None  # processes building messages; None = decide (sendjob.build_processes)
    accept_all_warnings: bool = False  # --accept-warnings: the pre-send checks' warnings do not stop the run

    @classmethod
    def from_settings(cls, send_settings, **overrides) -> "RunOptions":
        """Options from settings.send, with command-line values (None = not given) on top."""
        # Every option that [send] also has starts from the setting (same names on both sides).
        opts = cls(**{f.name: getattr(send_settings, f.name) for f in dataclasses.fields(cls)
                      if hasattr(send_settings, f.name)})
        for key, value in overrides.items():
            if value is not None:
                setattr(opts, key, value)
        return opts


@dataclass
class RunStats:
    """What one run did; `stopped` says why it ended early (None = it ran out of work)."""

    total: int = 0               # rows waiting when the run started
    sent: int = 0
    failed: int = 0
    deferred: int = 0            # left deferred at the end of the run
    attempts: int = 0            # transport attempts, retries included
    retried: int = 0
    suppressed_now: int = 0      # addresses the provider refused for good, added to the suppression list
    started: float = 0.0
    finished: float = 0.0
    stopped: str | None = None
    error: BaseException | None = None
    last_errors: list = field(default_factory=list)

    @property
    def done(self) -> int:
        """Recipients settled so far (sent or failed)."""
        return self.sent + self.failed

    @property
    def duration(self) -> float:
        """Seconds from the first claim to the last result."""
        return max(0.0, (self.finished or self.started) - self.started)

    @property
    def per_second(self) -> float:
        """Messages sent per second over the run."""
        return self.sent / self.duration if self.duration > 0 else 0.0


@dataclass
class RunReport:
    """What a real run did, for the summary and the exit code."""

    send: SendRow
    stats: RunStats
    counts: dict[str, int]         # ledger counts after the run
    skipped: dict                  # at audience time: suppressed, invalid, duplicates, not in audience, invalid_rows
    already_sent: int              # sent by earlier runs
    prepared: dict[str, int]       # prepare_run: in_doubt, deferred, failed, suppressed
    started_new: bool
    added: int = 0
    dropped: int = 0
    connections: int = 1           # transports (connections) the run sends over
    connections_refused: str | None = None  # why the server turned away some of those asked for
    destination: str = ""          # where the messages went: the transport's describe() (host, folder, API)
    error: BaseException | None = None  # what stopped the run part-way (the ledger holds what was done)

    @property
    def exit_code(self) -> int:
        """0 all sent; 3 something failed or is deferred; 4 the run stopped early (resumable)."""
        if self.stats.stopped:
            return 4
        if self.stats.failed or self.stats.deferred or self.counts[DEFERRED]:
            return 3
        return 0
