"""A scriptable aiosmtpd server on 127.0.0.1 for tests, plus a cutting TCP proxy, a silent server and TLS certs.

Fixtures (registered for every test by `pytest_plugins` in tests/conftest.py; just name them as arguments):

- `smtp_server`          a started plain server (no TLS, no AUTH, SMTPUTF8 offered).
- `smtp_server_factory`  `make(tls=None|"starttls"|"implicit", auth=None|(user, password),
                         auth_require_tls=True, smtputf8=True, cert=None)` → started server.
- `tls_cert`             (cert.pem, key.pem) for localhost + 127.0.0.1, self-signed, made with openssl.
- `tls_cert_factory`     `make(*names)` → a TLSCert for other names (e.g. a host-name mismatch).
- `silent_server`        (host, port) that accepts TCP connections and never says a word.
- `tcp_proxy_factory`    `make(host, port)` → CutProxy that can cut a connection mid-stream.

Script replies per recipient before sending (each call queues replies, one per attempt; after the
queue runs out the command succeeds):

    server.script.on("RCPT", "bob@example.org", "451 4.7.1 Greylisted, try later")
    server.script.on("RCPT", "x@example.org", "550 5.1.1 No such user", always=True)
    server.script.on("DATA", "carol@example.org", "421 4.3.2 Shutting down")   # 421 closes the session
    server.script.on("DATA", "dave@example.org", DROP)   # message read, then connection closed, no reply
    server.script.on("DATA", "erin@example.org", HANG)   # message read, never a reply
    server.script.on("MAIL", "news@example.org", "452 4.3.1 Insufficient storage")  # keyed by sender
    server.script.max_per_connection = 3                 # 4th MAIL in one session: 421 and close

Inspect: `server.deliveries` (Delivery records), `server.recipients()` (Counter of envelope
recipients actually accepted), `server.log` ((connection, command, argument, reply) tuples),
`server.connections` (number of SMTP sessions that said EHLO/HELO).
`server.smtp_settings(**overrides)` gives the [smtp] table that points digest at this server.
"""

from __future__ import annotations

import asyncio
import collections
import shutil
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

HOST = "127.0.0.1"
DROP = "<drop>"  # close the connection instead of replying
HANG = "<hang>"  # never reply (until the server stops)


@dataclass
class Delivery:
    """One accepted message as the server saw it."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    mail_options: list[str]
    smtputf8: bool
    connection: int
    tls: bool
    auth_user: str | None


@dataclass
class Script:
    """Scripted replies: queues keyed by (command, address); address is the sender for MAIL,
    the recipient for RCPT, the first recipient for DATA."""

    queues: dict[tuple[str, str], collections.deque] = field(default_factory=dict)
    always: dict[tuple[str, str], str] = field(default_factory=dict)
    max_per_connection: int | None = None

    def on(self, command: str, address: str, *replies: str, always: bool = False) -> None:
        """Queue `replies` (one per attempt) for `command` about `address`; `always` repeats the last one."""
        command = command.upper()
        assert command in ("MAIL", "RCPT", "DATA"), command
        key = (command, address.lower())
        if always:
            self.always[key] = replies[-1]
        else:
            self.queues.setdefault(key, collections.deque()).extend(replies)

    def next_reply(self, command: str, address: str) -> str | None:
        key = (command, address.lower())
        queue = self.queues.get(key)
        if queue:
            return queue.popleft()
        return self.always.get(key)


class _Handler:
    """aiosmtpd hooks: apply the script, record what was accepted."""

    def __init__(self, owner: "ScriptedSMTPServer"):
        self.owner = owner

    def _conn(self, server) -> int:
        return self.owner._conn_number(server)

    async def _reply(self, server: SMTP, session, command: str, arg: str, reply: str) -> str | None:
        """Apply a scripted reply; returns the status to push, or None after DROP."""
        self.owner.log.append((self._conn(server), command, arg, reply))
        if reply == DROP:
            server.transport.close()  # connection_lost() then cancels this handler
        if reply in (DROP, HANG):
            await asyncio.sleep(3600)  # cancelled when the connection or the server goes
            return None
        if reply.startswith("421"):
            # Like a real server: say 421, then close the session.
            server.loop.call_soon(server.transport.close)
        return reply

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        self.owner.log.append((self._conn(server), "EHLO", hostname, responses[-1] if responses else ""))
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        conn = self._conn(server)
        self.owner._per_conn[conn] += 1
        limit = self.owner.script.max_per_connection
        if limit is not None and self.owner._per_conn[conn] > limit:
            return await self._reply(server, session, "MAIL", address, "421 4.7.0 Too many messages, closing")
        reply = self.owner.script.next_reply("MAIL", address)
        if reply is not None:
            return await self._reply(server, session, "MAIL", address, reply)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        self.owner.log.append((conn, "MAIL", address, "250 OK"))
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.owner.script.next_reply("RCPT", address)
        if reply is not None:
            return await self._reply(server, session, "RCPT", address, reply)
        envelope.rcpt_tos.append(address)
        self.owner.log.append((self._conn(server), "RCPT", address, "250 OK"))
        return "250 OK"

    async def handle_RSET(self, server, session, envelope):
        self.owner.log.append((self._conn(server), "RSET", "", "250 OK"))
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        first = envelope.rcpt_tos[0] if envelope.rcpt_tos else ""
        reply = self.owner.script.next_reply("DATA", first)
        if reply is not None:
            return await self._reply(server, session, "DATA", first, reply)
        self.owner.deliveries.append(Delivery(
            mail_from=envelope.mail_from, rcpt_tos=list(envelope.rcpt_tos),
            data=envelope.original_content, mail_options=list(envelope.mail_options),
            smtputf8=envelope.smtp_utf8, connection=self._conn(server),
            tls=server.transport.get_extra_info("ssl_object") is not None,
            auth_user=session.auth_data.decode() if isinstance(session.auth_data, bytes) else None))
        n = len(self.owner.deliveries)
        reply = f"250 2.0.0 Ok: queued as Q{n:05d}"
        self.owner.log.append((self._conn(server), "DATA", first, reply))
        return reply


class _Controller(Controller):
    """Controller that binds port 0 and learns its port (no guessing, no races)."""

    def _create_server(self):
        async def create():
            srv = await self.loop.create_server(self._factory_invoker, host=self.hostname, port=0,
                                                ssl=self.ssl_context)
            self.port = srv.sockets[0].getsockname()[1]
            return srv
        return create()


class ScriptedSMTPServer:
    """An aiosmtpd server on 127.0.0.1 with scripted replies and a record of deliveries."""

    def __init__(self, *, tls: str | None = None, cert: "TLSCert | None" = None,
                 auth: tuple[str, str] | None = None, auth_require_tls: bool = True, smtputf8: bool = True):
        assert tls in (None, "starttls", "implicit")
        assert cert is not None or tls is None, "TLS needs a cert (use the tls_cert fixture)"
        self.tls = tls
        self.cert = cert
        self.credentials = auth
        self.script = Script()
        self.deliveries: list[Delivery] = []
        self.log: list[tuple[int, str, str, str]] = []
        self._count = 0
        self._per_conn: collections.Counter = collections.Counter()
        context = None
        if cert is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert.cert, cert.key)
        kwargs: dict[str, Any] = dict(hostname=HOST, server_hostname="mx.test", enable_SMTPUTF8=smtputf8,
                                      auth_require_tls=auth_require_tls, ready_timeout=10)
        if auth is not None:
            kwargs["authenticator"] = self._authenticate
        if tls == "starttls":
            kwargs["tls_context"] = context
        elif tls == "implicit":
            kwargs["ssl_context"] = context
        self.controller = _Controller(_Handler(self), **kwargs)

    # -- lifecycle --
    def start(self) -> "ScriptedSMTPServer":
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller._thread is not None:
            self.controller.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        return self.controller.port

    # -- bookkeeping --
    def _conn_number(self, server) -> int:
        # One aiosmtpd SMTP protocol object per TCP connection (its session is renewed by STARTTLS).
        number = getattr(server, "_test_connection", None)
        if number is None:
            self._count += 1
            number = server._test_connection = self._count
        return number

    @property
    def connections(self) -> int:
        """SMTP sessions that got as far as EHLO/HELO (the controller's start-up probe does not count)."""
        return len({c for c, cmd, *_ in self.log if cmd == "EHLO"})

    def recipients(self) -> collections.Counter:
        """How many accepted messages each envelope recipient got."""
        return collections.Counter(r for d in self.deliveries for r in d.rcpt_tos)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and self.credentials is not None
              and (auth_data.login.decode(), auth_data.password.decode()) == self.credentials)
        self.log.append((self._conn_number(server), "AUTH", mechanism, "235" if ok else "535"))
        return AuthResult(success=ok, handled=False, auth_data=auth_data.login if ok else None)

    def smtp_settings(self, **overrides: Any) -> dict[str, Any]:
        """The [smtp] table that points digest at this server (timeouts short for tests)."""
        table: dict[str, Any] = {
            "host": HOST, "port": self.port,
            "security": {"starttls": "starttls", "implicit": "tls", None: "none"}[self.tls],
            "timeout": 2.0,
        }
        if self.cert is not None:
            table["ca_file"] = str(self.cert.cert)
        table.update(overrides)
        return table


# ---------------------------------------------------------------------------------------------
# TLS certificates (openssl CLI; the cryptography package is not a test dependency)

@dataclass(frozen=True)
class TLSCert:
    cert: Path
    key: Path


def make_cert(folder: Path, *names: str) -> TLSCert:
    """A self-signed EC certificate (also its own CA) for DNS names / IP addresses `names`."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl CLI not available to make a test certificate")
    folder.mkdir(parents=True, exist_ok=True)
    names = names or ("localhost", "127.0.0.1")
    san = ",".join(f"IP:{n}" if n.replace(".", "").isdigit() else f"DNS:{n}" for n in names)
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={names[0]}",
         "-addext", f"subjectAltName={san}"],
        check=True, capture_output=True)
    return TLSCert(cert, key)


# ---------------------------------------------------------------------------------------------
# A server that never answers, and a proxy that cuts connections

class SilentServer:
    """Listens and lets the kernel accept connections, but never reads or writes a byte."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((HOST, 0))
        self.sock.listen(16)
        self.host, self.port = self.sock.getsockname()

    def close(self) -> None:
        self.sock.close()


class CutProxy:
    """TCP proxy 127.0.0.1:port → target; `cut_on(marker)` cuts the connection when the client sends marker.

    The bytes before the marker are forwarded, the rest is dropped, and both sides are closed: the
    server sees a connection lost in the middle of DATA, the client a dropped connection.
    `refuse = True` makes new connections close at once (a server that went away);
    `accept_only = N` closes every connection after the first N (a per-client connection limit).
    """

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((HOST, 0))
        self.listener.listen(16)
        self.host, self.port = self.listener.getsockname()
        self.refuse = False
        self.accept_only: int | None = None
        self.cuts = 0
        self.accepted = 0
        self._markers: list[bytes] = []
        self._refuse_after_cut = False
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def cut_on(self, marker: bytes, times: int = 1, *, then_refuse: bool = False) -> None:
        """Cut the next `times` connections whose client→server stream contains `marker`.

        `then_refuse=True`: after the cut, refuse new connections too (the server went away).
        """
        with self._lock:
            self._markers.extend([marker] * times)
            self._refuse_after_cut = then_refuse

    def _take_marker(self, window: bytes) -> int:
        with self._lock:
            for m in self._markers:
                pos = window.find(m)
                if pos >= 0:
                    self._markers.remove(m)
                    self.cuts += 1
                    if self._refuse_after_cut:
                        self.refuse = True
                    return pos
        return -1

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            if self.refuse or (self.accept_only is not None and self.accepted > self.accept_only):
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            self._socks += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, watch: bool) -> None:
        tail = b""
        try:
            while True:
                chunk = src.recv(65536)
                if not chunk:
                    break
                if watch and self._markers:
                    window = tail + chunk
                    pos = self._take_marker(window)
                    if pos >= 0:
                        forward = pos - len(tail)
                        if forward > 0:
                            dst.sendall(chunk[:forward])
                        break
                    tail = window[-256:]
                dst.sendall(chunk)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self._closed = True
        self.listener.close()
        for s in self._socks:
            try:
                s.close()
            except OSError:
                pass


# ---------------------------------------------------------------------------------------------
# Fixtures

@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory) -> TLSCert:
    """Self-signed certificate for localhost and 127.0.0.1 (made once per test session)."""
    return make_cert(tmp_path_factory.mktemp("tls"), "localhost", "127.0.0.1")


@pytest.fixture
def tls_cert_factory(tmp_path_factory):
    """make(*names) → a self-signed TLSCert for those names."""
    def make(*names: str) -> TLSCert:
        return make_cert(tmp_path_factory.mktemp("tls"), *names)
    return make


@pytest.fixture
def smtp_server_factory() -> Iterator:
    """make(tls=None, auth=None, auth_require_tls=True, smtputf8=True, cert=None) → started server."""
    servers: list[ScriptedSMTPServer] = []

    def make(**kwargs) -> ScriptedSMTPServer:
        server = ScriptedSMTPServer(**kwargs).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def smtp_server(smtp_server_factory) -> ScriptedSMTPServer:
    """A plain scripted SMTP server on 127.0.0.1 (no TLS, no AUTH, SMTPUTF8 offered)."""
    return smtp_server_factory()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    """A TCP port that accepts connections and never answers."""
    server = SilentServer()
    yield server
    server.close()


@pytest.fixture
def tcp_proxy_factory() -> Iterator:
    """make(host, port) → CutProxy in front of that address."""
    proxies: list[CutProxy] = []

    def make(host: str, port: int) -> CutProxy:
        proxy = CutProxy(host, port)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()
