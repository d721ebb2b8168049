"""A small IMAP4rev1 server on 127.0.0.1 over implicit TLS, for the bounce-mail tests.

It implements what imaplib and `digest bounces fetch` use — CAPABILITY, LOGIN, LIST, CREATE, SELECT,
UID SEARCH, UID FETCH (BODY[] / BODY.PEEK[]), UID COPY, UID MOVE, UID STORE, UID EXPUNGE, EXPUNGE,
NOOP, LOGOUT — over folders held in memory. `move=False` leaves MOVE out of the capabilities (and
refuses it), so the COPY + \\Deleted + EXPUNGE path is tested too; `uidplus=False` does the same for
UID EXPUNGE. Inspect `server.folders[name]` (a list of Mail), `server.log` (commands received).
"""

from __future__ import annotations

import re
import socketserver
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
_TOKEN = re.compile(rb'"((?:[^"\\]|\\.)*)"|(\([^)]*\))|(\S+)')


@dataclass
class Mail:
    uid: int
    data: bytes
    flags: set[str] = field(default_factory=set)


class IMAPServer:
    """The server: `start()`, `add(folder, raw)`, `stop()`; one user with one password."""

    def __init__(self, cert: Path, key: Path, *, user: str, password: str, move: bool = True,
                 uidplus: bool = True):
        self.user, self.password = user, password
        self.move, self.uidplus = move, uidplus
        self.folders: dict[str, list[Mail]] = {"INBOX": []}
        self.next_uid: dict[str, int] = {"INBOX": 1}
        self.log: list[str] = []
        self.lock = threading.Lock()
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(str(cert), str(key))
        owner = self

        class Handler(socketserver.StreamRequestHandler):
            def setup(self):
                try:
                    self.request = owner.context.wrap_socket(self.request, server_side=True)
                except (ssl.SSLError, OSError):
                    self.request.close()
                    self.failed = True
                    return
                self.failed = False
                super().setup()

            def handle(self):
                if not self.failed:
                    _Session(owner, self.rfile, self.wfile).run()

            def finish(self):
                if not self.failed:
                    try:
                        super().finish()
                    except OSError:
                        pass

        self.tcp = socketserver.ThreadingTCPServer((HOST, 0), Handler, bind_and_activate=True)
        self.tcp.daemon_threads = True
        self.port = self.tcp.server_address[1]
        self.thread = threading.Thread(target=self.tcp.serve_forever, daemon=True)

    @property
    def capabilities(self) -> str:
        caps = ["IMAP4rev1", "LITERAL+"] + (["MOVE"] if self.move else []) + (["UIDPLUS"] if self.uidplus else [])
        return " ".join(caps)

    def add(self, folder: str, data: bytes) -> None:
        """Deliver a message into a folder (as a mail server would)."""
        with self.lock:
            self._append(folder, data, set())

    def _append(self, folder: str, data: bytes, flags: set[str]) -> int:
        uid = self.next_uid[folder]
        self.next_uid[folder] = uid + 1
        self.folders[folder].append(Mail(uid, data, set(flags)))
        return uid

    def start(self) -> IMAPServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.tcp.shutdown()
        self.tcp.server_close()


class _Session:
    """One client connection: reads tagged commands, answers them."""

    def __init__(self, server: IMAPServer, rfile, wfile):
        self.server, self.rfile, self.wfile = server, rfile, wfile
        self.authed = False
        self.selected: str | None = None

    def send(self, line: bytes | str) -> None:
        self.wfile.write((line.encode() if isinstance(line, str) else line) + b"\r\n")

    def run(self) -> None:
        self.send(f"* OK [CAPABILITY {self.server.capabilities}] test IMAP ready")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            tag, _, rest = line.rstrip(b"\r\n").partition(b" ")
            args = [m.group(1) if m.group(1) is not None else (m.group(2) or m.group(3))
                    for m in _TOKEN.finditer(rest)]
            command = args.pop(0).decode().upper() if args else ""
            if command == "UID" and args:
                command = "UID " + args.pop(0).decode().upper()
            self.server.log.append(command)
            with self.server.lock:
                done = self.dispatch(tag.decode(), command, args)
            self.wfile.flush()
            if done:
                return

    def dispatch(self, tag: str, command: str, args: list[bytes]) -> bool:
        if command == "LOGOUT":
            self.send("* BYE bye")
            self.send(f"{tag} OK LOGOUT done")
            return True
        if command == "CAPABILITY":
            self.send(f"* CAPABILITY {self.server.capabilities}")
        elif command == "NOOP":
            pass
        elif command == "LOGIN":
            if len(args) == 2 and (args[0].decode(), args[1].decode()) == (self.server.user, self.server.password):
                self.authed = True
            else:
                self.send(f"{tag} NO [AUTHENTICATIONFAILED] Invalid credentials")
                return False
        elif not self.authed:
            self.send(f"{tag} BAD log in first")
            return False
        else:
            error = self.authed_command(command, args)
            if error:
                self.send(f"{tag} {error}")
                return False
        self.send(f"{tag} OK {command} completed")
        return False

    def authed_command(self, command: str, args: list[bytes]) -> str | None:
        folders = self.server.folders
        if command == "LIST":
            pattern = args[1].decode() if len(args) > 1 else "*"
            for name in folders:
                if pattern in ("*", name):
                    self.send(f'* LIST (\\HasNoChildren) "/" "{name}"')
        elif command == "CREATE":
            name = args[0].decode()
            if name in folders:
                return "NO [ALREADYEXISTS] folder exists"
            folders[name], self.server.next_uid[name] = [], 1
        elif command == "SELECT":
            name = args[0].decode()
            if name not in folders:
                return "NO [NONEXISTENT] no such folder"
            self.selected = name
            self.send(f"* {len(folders[name])} EXISTS")
            self.send("* OK [UIDVALIDITY 1] UIDs valid")
        elif command == "EXPUNGE":
            self.expunge(None)
        elif command.startswith("UID ") and self.selected is not None:
            return self.uid_command(command[4:], args)
        else:
            return "BAD command unknown or not allowed now"
        return None

    def mails(self, uid_set: bytes) -> list[tuple[int, Mail]]:
        wanted = {int(u) for u in uid_set.decode().split(",")}
        return [(n, m) for n, m in enumerate(self.server.folders[self.selected], 1) if m.uid in wanted]

    def uid_command(self, command: str, args: list[bytes]) -> str | None:
        if command == "SEARCH":
            undeleted = b"UNDELETED" in [a.upper() for a in args]
            uids = [str(m.uid) for m in self.server.folders[self.selected]
                    if not (undeleted and "\\Deleted" in m.flags)]
            self.send("* SEARCH " + " ".join(uids))
        elif command == "FETCH":
            self.fetch(args[0], peek=b"PEEK" in args[1].upper())
        elif command in ("COPY", "MOVE"):
            return self.copy(args[0], args[1].decode(), move=command == "MOVE")
        elif command == "STORE":
            flags = set(args[2].decode().strip("()").split())
            for _, mail in self.mails(args[0]):
                mail.flags |= flags
        elif command == "EXPUNGE" and self.server.uidplus:
            self.expunge({int(u) for u in args[0].decode().split(",")})
        else:
            return f"BAD UID {command} not supported"
        return None

    def fetch(self, uid_set: bytes, *, peek: bool) -> None:
        for n, mail in self.mails(uid_set):
            if not peek:
                mail.flags.add("\\Seen")
            self.send(f"* {n} FETCH (UID {mail.uid} BODY[] {{{len(mail.data)}}}".encode())
            self.wfile.write(mail.data)
            self.send(")")

    def copy(self, uid_set: bytes, target: str, *, move: bool) -> str | None:
        if move and not self.server.move:
            return "BAD MOVE not supported"
        if target not in self.server.folders:
            return "NO [TRYCREATE] no such folder"
        mails = self.mails(uid_set)
        for _, mail in mails:
            self.server._append(target, mail.data, mail.flags - {"\\Deleted"})
        if move:
            self.expunge({m.uid for _, m in mails}, flag=False)
        return None

    def expunge(self, uids: set[int] | None, *, flag: bool = True) -> None:
        """Remove messages (those flagged \\Deleted; with uids, only among those), sending EXPUNGE lines."""
        mails = self.server.folders[self.selected]
        for n in range(len(mails), 0, -1):
            mail = mails[n - 1]
            if (uids is None or mail.uid in uids) and (not flag or "\\Deleted" in mail.flags):
                del mails[n - 1]
                self.send(f"* {n} EXPUNGE")
