"""The preview's subscriber picker: a small search index over the list, rebuilt when the file changes.

The index keeps only (address, name) per subscriber — a few dozen bytes each — so even a large list
is searched server-side without holding Subscriber objects; the one subscriber picked is read back
from the file (streaming, stopping at the match) and kept until the list changes.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from digest.addresses import address_key
from digest.audience.lookup import find_subscribers
from digest.errors import SubscriberError

SEARCH_LIMIT = 20  # matches returned per search: the picker shows a short list, never the whole file


@dataclass
class SearchResult:
    """Matches for one query, and what the list holds overall."""

    matches: list[dict]
    total_matches: int
    count: int          # valid subscribers in the list
    skipped: int        # rows skipped as invalid or duplicate
    path: str
    error: str | None = None


@dataclass
class _Index:
    stamp: tuple | None
    emails: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    haystack: list[str] = field(default_factory=list)  # "email\0name", case-folded, for substring search
    skipped: int = 0
    error: str | None = None


def _stamp(path: Path) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class SubscriberIndex:
    """Search a subscriber list by address or name; look one subscriber up by address."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._index: _Index | None = None
        self._index_path: Path | None = None
        self._picked: dict[tuple, object] = {}

    def _current(self, path: Path) -> _Index:
        from digest.audience.subscribers import ListReport, read_subscribers

        stamp = _stamp(path)
        if self._index is not None and self._index_path == path and self._index.stamp == stamp:
            return self._index
        index = _Index(stamp)
        self._picked.clear()
        if stamp is None:
            index.error = f"the subscriber list {path} does not exist; previewing as an example reader"
        else:
            report = ListReport()
            try:
                for sub in read_subscribers(path, report=report):
                    index.emails.append(sub.email)
                    index.names.append(sub.name)
                    index.haystack.append(f"{sub.email}\0{sub.name}".casefold())
            except SubscriberError as exc:
                index.error = str(exc)
            index.skipped = report.skipped
        self._index, self._index_path = index, path
        return index

    def search(self, path: Path, query: str, limit: int = SEARCH_LIMIT) -> SearchResult:
        """Subscribers whose address or name contains `query` (case-insensitive), in list order."""
        with self._lock:
            index = self._current(path)
            needle = query.strip().casefold()
            matches: list[dict] = []
            total = 0
            for i, hay in enumerate(index.haystack):
                if needle in hay:
                    total += 1
                    if len(matches) < limit:
                        matches.append({"email": index.emails[i], "name": index.names[i]})
            return SearchResult(matches=matches, total_matches=total, count=len(index.emails),
                                skipped=index.skipped, path=str(path), error=index.error)

    def find(self, path: Path, email: str):
        """The Subscriber with this address (by address_key), or None when the list has none."""
        key = address_key(email)
        with self._lock:
            self._current(path)  # drops remembered picks when the file changed
            cache_key = (path, key)
            if cache_key not in self._picked:
                self._picked[cache_key] = find_subscribers(path, [email])[0].get(key)
            return self._picked[cache_key]
