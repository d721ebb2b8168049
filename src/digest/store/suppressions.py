"""The suppression list, project by project: what every send leaves out (unsubscribes, bounces)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Iterator

from digest.addresses import check_address
from digest.store.ledger import Ledger, ledger_path

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings


def suppressed_keys(settings: "Settings") -> tuple[set[str], str | None]:
    """Every suppressed address key, and a note when there is no ledger yet (none is created to look)."""
    if not ledger_path(settings).exists():
        return set(), "no ledger yet: nothing sent or suppressed"
    with Ledger.for_settings(settings, readonly=True) as ledger:
        return ledger.suppressed_keys(), None


def suppress(settings: "Settings", addresses: Iterable[str], reason: str, source: str) -> list[tuple[str, bool]]:
    """Add addresses to the list: (address, newly added) for each; nothing when one is not an address."""
    addresses = list(addresses)
    for address in addresses:
        check_address(address, "nothing was added: check the spelling")
    with Ledger.for_settings(settings) as ledger:
        return [(address, ledger.suppress(address, reason, source=source)) for address in addresses]


def import_suppressions(settings: "Settings", rows: list[tuple[str, str]], source: str) -> int:
    """Add (email, reason) pairs in one transaction; returns how many were new."""
    with Ledger.for_settings(settings) as ledger:
        return ledger.suppress_many(rows, source=source)


def unsuppress(settings: "Settings", addresses: Iterable[str]) -> list[tuple[str, bool]]:
    """Take addresses off the list: (address, was on it) for each."""
    with Ledger.for_settings(settings) as ledger:
        return [(address, ledger.unsuppress(address)) for address in addresses]


# Suppressions a reader made on the web (the unsubscribe page, a mail client's one-click POST): the
# only ones a reader may take back by resubscribing. Bounces, complaints and imports are not theirs.
READER_SOURCES = ("web", "one-click")


def unsuppress_reader(settings: "Settings", address: str) -> bool:
    """Take an address off the list if a reader put it there (source web or one-click); True when removed."""
    with Ledger.for_settings(settings) as ledger:
        return ledger.unsuppress_from(address, READER_SOURCES)


def suppression_rows(settings: "Settings") -> Iterator[tuple[str, str, str, str]]:
    """(email, reason, source, created_at) rows, oldest first; none when there is no ledger yet."""
    path = ledger_path(settings)
    if not path.exists():
        return
    with Ledger(path, readonly=True) as ledger:
        yield from ledger.iter_suppressions()
