"""Finding subscribers by address (the one lookup: stream the list once, stop when all are found),
and the reader a preview or build is personalised for."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from digest.addresses import address_key
from digest.audience.subscribers import Subscriber, read_subscribers
from digest.errors import SubscriberError

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings


def find_subscribers(path: Path, addresses: Collection[str], *, tags: Iterable[str] | None = None
                     ) -> tuple[dict[str, Subscriber], Subscriber | None]:
    """({address_key: Subscriber} for the addresses the list has, the list's first subscriber).

    Compares by the one address key (case, IDN spelling); the first row of a repeated address
    wins, as everywhere else. Reading stops as soon as every address is found.
    """
    wanted = {address_key(a) for a in addresses}
    found: dict[str, Subscriber] = {}
    first: Subscriber | None = None
    for sub in read_subscribers(path, tags=tags or None):
        first = first or sub
        if sub.key in wanted and sub.key not in found:
            found[sub.key] = sub
        if len(found) == len(wanted):
            break
    return found, first


def example_subscriber() -> "Subscriber":
    """The reader used when there is no list to take one from."""
    return Subscriber(email="reader@example.org", name="Example Reader",
                      fields={"email": "reader@example.org", "name": "Example Reader", "first_name": "Example"},
                      tags=frozenset(), line=0)


def pick_subscriber(settings: "Settings", as_email: str | None, list_path: Path | None = None) -> tuple["Subscriber", Path | None]:
    """The subscriber a preview/build is personalised for: --as EMAIL from the list, else its first row."""
    path = list_path or settings.path("subscribers")
    if not path.is_file():
        if as_email:
            raise SubscriberError(f"--as {as_email}: the subscriber list {path} does not exist.",
                                  "set [paths] subscribers in digest.toml or pass --to FILE")
        return example_subscriber(), None
    found, first = find_subscribers(path, [as_email] if as_email else [])
    if as_email and found:
        return found[address_key(as_email)], path
    if not as_email and first is not None:
        return first, path
    if as_email:
        raise SubscriberError(f"--as {as_email}: no such subscriber in {path}.",
                              "use an address from the list (`digest subscribers check` lists problems)")
    return example_subscriber(), None
