"""The one small interface every transport implements, and the per-recipient result it returns."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Sequence

from digest.errors import TransportAuthError
from digest.outgoing import OutgoingMessage

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings


class Status(str, enum.Enum):
    """What happened to one recipient's message."""

    SENT = "sent"          # accepted by the server / provider
    FAILED = "failed"      # permanently refused; retrying will not help
    DEFERRED = "deferred"  # temporarily refused (4xx, 429, 5xx from an API, timeout): retry later


@dataclass(frozen=True)
class SendResult:
    """The outcome for one recipient."""

    recipient_id: int
    status: Status
    provider_id: str | None = None  # provider message id or the SMTP queue id reply
    code: str | None = None         # SMTP reply code / provider error code
    reason: str = ""                # human-readable reason, kept in the ledger
    suppress: bool = False          # permanent address problem: add to the suppression list
    retryable: bool = False         # FAILED, but not because of this reader (e.g. our sender was refused):
                                    # `digest retry` sends it again once the cause is fixed
    retry_after: float | None = None  # seconds the provider asked us to wait


class AccountRefusedError(TransportAuthError):
    """The provider refused the sender or the account, not a reader (an unverified From, a missing
    message stream, a used-up quota): like refused credentials, the run stops at once and the batch
    stays pending, so nobody is recorded as failed for a fault that is not theirs."""


class Transport(ABC):
    """Open once, send batches, close. A result per recipient; whole-transport failures raise.

    Raise `TransportAuthError` when credentials are refused (the run stops), and
    `TransientTransportError` when nothing in a batch could be attempted (connection lost and not
    re-established): the send loop defers the batch and backs off.
    """

    name: ClassVar[str] = ""
    needs_mime: ClassVar[bool] = True   # the send loop builds OutgoingMessage.mime only when True
    max_batch: ClassVar[int] = 100      # most messages one send_batch call takes
    supports_connections: ClassVar[bool] = False  # whether --connections N > 1 means anything
    reaches_people: ClassVar[bool] = True  # False for outbox: files on disk, nobody receives them
    settings_class: ClassVar[type | None] = None  # the dataclass of its [name] section in digest.toml

    def __init__(self, settings: "Settings", *, connections: int = 1):
        self.settings = settings
        self.connections = connections

    def describe(self) -> str:
        """One line naming where the messages go (host:port, folder, provider endpoint)."""
        return self.name

    def open(self) -> None:
        """Connect / authenticate. Called once before the first batch."""

    def close(self) -> None:
        """Release connections. Safe to call more than once."""

    @abstractmethod
    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Send up to `max_batch` messages; return one result per message, in the same order."""

    def __enter__(self) -> "Transport":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
