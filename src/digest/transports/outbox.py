"""The built-in default transport: write each message to a folder (.eml files or a Maildir) instead of sending."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import re
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from digest.addresses import address_key
from digest.config import load_section
from digest.errors import ConfigError, PermanentTransportError, TransientTransportError
from digest.filemodes import open_private, private_folder
from digest.outgoing import OutgoingMessage
from digest.sections import setting
from digest.transports.base import SendResult, Status, Transport

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings

FORMATS = ("eml", "maildir")
_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]+")


@dataclass
class OutboxSettings:
    """The [outbox] section of digest.toml."""

    folder: str = setting("outbox", "Folder under [paths] output; an absolute path is used as is.")
    format: str = setting("eml", "`eml`: one .eml file per recipient, overwritten on re-send; `maildir`: a "
                          "Maildir (tmp/, new/, cur/) a mail client can open.")


def eml_name(msg: OutgoingMessage) -> str:
    """File name for a message: readable address plus a hash of (address key, Message-ID).

    The same recipient and Message-ID always give the same name, so a re-send overwrites its file.
    """
    key = address_key(msg.to_email)
    readable = _UNSAFE.sub("_", key).strip("._")[:80] or "recipient"
    digest = hashlib.sha256(f"{key}\0{msg.message_id}".encode("utf-8")).hexdigest()[:12]
    return f"{readable}.{digest}.eml"


class OutboxTransport(Transport):
    """Write the MIME bytes of each message to disk; nothing leaves the machine."""

    # Messages stay on this machine, so the public development key may sign their unsubscribe
    # links (the README's first command must work with no secrets set).
    reaches_people = False
    settings_class = OutboxSettings

    name = "outbox"
    needs_mime = True
    max_batch = 100
    supports_connections = False

    def __init__(self, settings: "Settings", *, connections: int = 1):
        super().__init__(settings, connections=connections)
        where = settings.where("outbox")
        cfg = load_section(OutboxSettings, settings.transport_section("outbox"), where)
        if cfg.format not in FORMATS:
            raise ConfigError(f"{where} format = {cfg.format!r}: expected 'eml' or 'maildir'.",
                              "'eml' for one file per recipient, 'maildir' for a mail client")
        if not cfg.folder.strip():
            raise ConfigError(f"{where} folder is empty.", "name a folder, e.g. folder = \"outbox\"")
        self.cfg = cfg
        self.folder = settings.path("output") / Path(cfg.folder).expanduser()
        self._counter = itertools.count()
        self._host = re.sub(r"[/:]", "_", socket.gethostname()) or "localhost"

    def describe(self) -> str:
        """'outbox: <folder> (eml|maildir)'."""
        return f"outbox: {self.folder} ({self.cfg.format})"

    def open(self) -> None:
        """Create the folder (and Maildir's tmp/new/cur)."""
        dirs = [self.folder / d for d in ("tmp", "new", "cur")] if self.cfg.format == "maildir" else [self.folder]
        for d in dirs:
            try:
                private_folder(d, within=self.folder)  # every reader's message: 0700, files 0600
            except OSError as exc:
                raise PermanentTransportError(f"cannot create outbox folder {d}: {exc.strerror or exc}.",
                                              "set [outbox] folder or [paths] output to a writable place") from exc

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Write each message; SENT with provider_id = the file written."""
        self.open()
        results: list[SendResult] = []
        for n, msg in enumerate(messages):
            if msg.mime is None:
                raise PermanentTransportError(f"message for {msg.to_email} has no MIME bytes.",
                                              "the send loop must build mime for transports with needs_mime")
            try:
                path = self._write_maildir(msg.mime) if self.cfg.format == "maildir" else self._write_eml(msg)
            except OSError as exc:
                error = f"cannot write to {self.folder}: {exc.strerror or exc}"
                if not results:
                    raise TransientTransportError(f"outbox: {error}.", "free disk space or fix permissions") from exc
                results.extend(SendResult(m.recipient_id, Status.DEFERRED, reason=error) for m in messages[n:])
                break
            results.append(SendResult(msg.recipient_id, Status.SENT, provider_id=str(path)))
        return results

    def _write_eml(self, msg: OutgoingMessage) -> Path:
        target = self.folder / eml_name(msg)
        # Write beside the target and rename: a reader never sees half a file, a re-send replaces it.
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".eml", dir=self.folder)
        with _removed_on_error(tmp):
            with os.fdopen(fd, "wb") as fh:
                fh.write(msg.mime)  # type: ignore[arg-type]
            os.replace(tmp, target)
        return target

    def _write_maildir(self, mime: bytes) -> Path:
        # Maildir: unique name (time, pid, counter, host), written in tmp/ then renamed into new/.
        # Files in a Maildir use the local line ending (LF), as a local delivery agent writes them.
        now = time.time()
        name = f"{int(now)}.M{int(now % 1 * 1e6)}P{os.getpid()}Q{next(self._counter)}.{self._host}"
        tmp, new = self.folder / "tmp" / name, self.folder / "new" / name
        with _removed_on_error(tmp):
            with os.fdopen(open_private(tmp, os.O_WRONLY | os.O_EXCL), "wb") as fh:
                fh.write(mime.replace(b"\r\n", b"\n"))
            os.rename(tmp, new)
        return new


@contextlib.contextmanager
def _removed_on_error(tmp: "str | Path"):
    """Delete the half-written temporary file if writing or renaming it fails, then re-raise."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
