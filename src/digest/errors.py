"""The exception family every digest module raises; the CLI turns them into one-paragraph errors."""

from __future__ import annotations


class DigestError(Exception):
    """Base of every error digest reports to the user.

    `message` names what failed (file:line, host:port, provider status); `hint` is the next step.
    """

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  → {self.hint}"


class ConfigError(DigestError):
    """digest.toml or an environment variable is missing, unknown or of the wrong type."""


class IssueError(DigestError):
    """An issue file is unreadable or does not follow the issue format."""


class RenderError(DigestError):
    """A template, MJML or CSS step failed while rendering an issue."""


class SubscriberError(DigestError):
    """The subscriber list cannot be read, or a row cannot be used."""


class MergeError(DigestError):
    """A merge field used by the templates has no value for a subscriber and no default."""


class LedgerError(DigestError):
    """The SQLite ledger cannot be opened, written or trusted."""


class SendLockedError(DigestError):
    """Another digest process is already sending this issue (or running --due)."""

    exit_code = 75  # EX_TEMPFAIL: cron should simply try again later


class TransportError(DigestError):
    """A transport failed as a whole (not just for one recipient)."""


class TransientTransportError(TransportError):
    """A failure worth retrying later: timeout, dropped connection, 4xx, 429, 5xx from an API."""

    def __init__(self, message: str, hint: str | None = None, retry_after: float | None = None):
        super().__init__(message, hint)
        self.retry_after = retry_after


class PermanentTransportError(TransportError):
    """A failure that retrying will not fix for this batch (bad request, message rejected)."""


class TransportAuthError(PermanentTransportError):
    """Credentials were refused: the run stops at once, nothing is retried."""


class CheckError(DigestError):
    """The pre-send checks found errors (or warnings nobody accepted): the issue does not go out."""
