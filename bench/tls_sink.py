"""A small SMTP sink on 127.0.0.1 that speaks plain text, STARTTLS or implicit TLS (smtp-sink has no TLS).

One thread per connection, blocking sockets, the ssl module for TLS (OpenSSL does the crypto); it
accepts every message and keeps nothing. Plain and TLS cases measured against it in one run are
comparable with each other (the same server code on both sides of the comparison), not with
smtp-sink's figures.

    with tls_sink("starttls", cert, key) as port: ...
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from pathlib import Path
from typing import Iterator

HOST = "127.0.0.1"


def _serve(conn: socket.socket, mode: str, context: ssl.SSLContext | None) -> None:
    tls = False
    try:
        if mode == "tls":
            conn, tls = context.wrap_socket(conn, server_side=True), True  # type: ignore[union-attr]
        reader = conn.makefile("rb")
        conn.sendall(b"220 sink.test ESMTP\r\n")
        while line := reader.readline():
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                offer = b"250-STARTTLS\r\n" if mode == "starttls" and not tls else b""
                conn.sendall(b"250-sink.test\r\n250-8BITMIME\r\n" + offer + b"250 SIZE 50000000\r\n")
            elif verb == b"STAR":
                conn.sendall(b"220 2.0.0 ready to start TLS\r\n")
                conn, tls = context.wrap_socket(conn, server_side=True), True  # type: ignore[union-attr]
                reader = conn.makefile("rb")
            elif verb == b"DATA":
                conn.sendall(b"354 go ahead\r\n")
                while (body := reader.readline()) not in (b".\r\n", b""):
                    pass
                conn.sendall(b"250 2.0.0 queued\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 2.0.0 bye\r\n")
                return
            else:  # MAIL, RCPT, RSET, NOOP
                conn.sendall(b"250 2.0.0 ok\r\n")
    except (OSError, ssl.SSLError):
        pass
    finally:
        conn.close()


@contextlib.contextmanager
def tls_sink(mode: str, cert: Path | None = None, key: Path | None = None) -> Iterator[int]:
    """Serve `mode` ("none", "starttls" or "tls") on a free port of 127.0.0.1; yield the port."""
    context = None
    if mode != "none":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(cert), str(key))
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen(64)
    stopped = threading.Event()

    def accept() -> None:
        while not stopped.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=_serve, args=(conn, mode, context), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        stopped.set()
        listener.close()
