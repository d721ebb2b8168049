"""The bounce mailbox over IMAP (imaplib): implicit TLS with the certificate and host name verified,
messages read without marking them seen, handled ones moved to a folder (never deleted)."""

from __future__ import annotations

import imaplib
import re
import socket
import ssl
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Self

from digest.errors import ConfigError, TransportAuthError, TransportError


class MailboxError(TransportError):
    """The bounce mailbox cannot be reached, logged in to or changed."""


_LIST_LINE = re.compile(rb'^\((?P<flags>[^)]*)\) (?:"(?:[^"\\]|\\.)*"|NIL) (?P<name>.+)$')


def tls_context(ca_path: Path | None, where: str) -> ssl.SSLContext:
    """A verifying client context; ca_path only changes whom it trusts (verification stays on)."""
    if ca_path is None:
        return ssl.create_default_context()
    if not ca_path.is_file():
        raise ConfigError(f"{where} imap_ca_file: {ca_path} does not exist.",
                          "point it at the PEM file of the CA that signed the IMAP server's certificate")
    try:
        return ssl.create_default_context(cafile=str(ca_path))
    except ssl.SSLError as exc:
        raise ConfigError(f"{where} imap_ca_file: {ca_path} is not a PEM certificate file ({exc.reason or exc}).",
                          "point it at the PEM file of the CA that signed the IMAP server's certificate") from exc


class Mailbox:
    """One logged-in IMAP session on one folder; use as a context manager (LOGOUT on exit)."""

    def __init__(self, host: str, port: int, *, context: ssl.SSLContext, timeout: float = 30.0):
        self.address = f"{host}:{port}"
        self.host, self.port, self.context, self.timeout = host, port, context, timeout
        self.imap: imaplib.IMAP4_SSL | None = None

    def login(self, user: str, password: str) -> Mailbox:
        """Connect over TLS and log in; a DigestError naming host:port when either fails."""
        try:
            self.imap = imaplib.IMAP4_SSL(self.host, self.port, ssl_context=self.context, timeout=self.timeout)
        except ssl.SSLCertVerificationError as exc:
            raise MailboxError(f"IMAP server {self.address}: TLS certificate not trusted "
                               f"({exc.verify_message or exc}).",
                               "if the server uses a private CA or a self-signed certificate, set [feedback] "
                               "imap_ca_file (or --ca-file) to that CA's PEM file; verification cannot be "
                               "switched off") from exc
        except ssl.SSLError as exc:
            raise MailboxError(f"IMAP server {self.address}: TLS handshake failed ({exc.reason or exc}).",
                               "imap_port must speak TLS from the first byte (usually 993)") from exc
        except (OSError, imaplib.IMAP4.error) as exc:
            raise MailboxError(f"cannot connect to IMAP server {self.address}: {self._failure(exc)}.",
                               "check [feedback] imap_host and imap_port") from exc
        try:
            self.imap.login(user, password)
        except imaplib.IMAP4.error as exc:
            self.close()
            raise TransportAuthError(f"IMAP server {self.address} refused the login of {user} ({exc}).",
                                     "check [feedback] imap_user and the password in the environment "
                                     "variable named by imap_password_env") from exc
        return self

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """LOGOUT (quietly: the session may already be gone)."""
        imap, self.imap = self.imap, None
        if imap is not None:
            try:
                imap.logout()
            except (OSError, imaplib.IMAP4.error):
                pass

    def _failure(self, exc: BaseException) -> str:
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return f"no reply within {self.timeout:g} s"
        return str(exc) or type(exc).__name__

    def _call(self, what: str, command: str, *args) -> list:
        """One command; a NO/BAD answer or a lost connection is a MailboxError saying what failed."""
        assert self.imap is not None, "log in first"
        try:
            typ, data = getattr(self.imap, command)(*args) if command != "uid" else self.imap.uid(*args)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise MailboxError(f"IMAP server {self.address}: {what} failed ({self._failure(exc)}).") from exc
        if typ != "OK":
            raise MailboxError(f"IMAP server {self.address}: {what} refused ({_text(data)}).")
        return data

    @property
    def capabilities(self) -> set[str]:
        """The server's capabilities (after login, when servers tell the whole list)."""
        assert self.imap is not None
        return {c.upper() for c in self.imap.capabilities}

    def select(self, folder: str) -> None:
        """Open a folder read-write."""
        self._call(f"SELECT {folder}", "select", _quote(folder))

    def ensure_folder(self, folder: str) -> None:
        """Create the folder unless the server lists it already."""
        names = [_list_name(line) for line in self._call(f"LIST {folder}", "list", '""', _quote(folder)) if line]
        if folder not in names:
            self._call(f"CREATE {folder}", "create", _quote(folder))

    def uids(self) -> list[bytes]:
        """The UIDs of the messages in the selected folder not marked for deletion, oldest first."""
        data = self._call("UID SEARCH", "uid", "SEARCH", None, "UNDELETED")
        return b" ".join(d for d in data if d).split()

    def fetch(self, uid: bytes) -> bytes | None:
        """One message's bytes, without setting \\Seen (a message that is no bounce stays as it was)."""
        for item in self._call(f"UID FETCH {uid.decode()}", "uid", "FETCH", uid, "(BODY.PEEK[])"):
            if isinstance(item, tuple):
                return item[1]
        return None  # gone meanwhile (another client expunged it)

    def move(self, uids: Sequence[bytes], folder: str) -> None:
        """Move messages: MOVE (RFC 6851) when offered, else COPY, flag \\Deleted, expunge just those."""
        if not uids:
            return
        for chunk in _chunks(uids, 200):
            uid_set = b",".join(chunk).decode()
            if "MOVE" in self.capabilities:
                self._call(f"UID MOVE to {folder}", "uid", "MOVE", uid_set, _quote(folder))
                continue
            self._call(f"UID COPY to {folder}", "uid", "COPY", uid_set, _quote(folder))
            self._call("UID STORE \\Deleted", "uid", "STORE", uid_set, "+FLAGS.SILENT", "(\\Deleted)")
            if "UIDPLUS" in self.capabilities:  # expunge only these, not what a person marked deleted
                self._call("UID EXPUNGE", "uid", "EXPUNGE", uid_set)
            else:
                self._call("EXPUNGE", "expunge")


def _chunks(items: Sequence[bytes], size: int) -> Iterator[Sequence[bytes]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _quote(name: str) -> str:
    """A folder name as an IMAP quoted string (imaplib sends arguments as they are)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _list_name(line) -> str:
    """The folder name in one LIST answer line."""
    if isinstance(line, tuple):  # the name came as a literal: {n}\r\n<name>
        return line[1].decode("utf-8", "replace")
    match = _LIST_LINE.match(line.strip())
    name = (match.group("name") if match else line).decode("utf-8", "replace")
    if name.startswith('"') and name.endswith('"'):
        name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return name


def _text(data) -> str:
    return " ".join(d.decode("utf-8", "replace") if isinstance(d, bytes) else str(d) for d in data or [] if d)

