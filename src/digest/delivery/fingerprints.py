"""What a send was started with: resuming after any of it changed needs --resume-changed."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from digest.errors import SubscriberError
from digest.store.rows import SendRow

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings


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


