"""Raw smtplib throughput against Postfix smtp-sink on 127.0.0.1 (the ceiling any digest SMTP send can reach).

Reusable pieces for other benchmarks (bench/send.py, bench/smtp_transport.py):
    find_smtp_sink(), smtp_sink() context manager → port, wait_for_port(), build_messages(n, size),
    one_connection(), threaded(), connection_per_message(), median_rate().

Run:  .venv/bin/python bench/smtp_raw.py [--messages 3000] [--rounds 3] [--connections 8]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import smtplib
import socket
import statistics
import subprocess
import threading
import time
from email import policy
from email.message import EmailMessage
from typing import Callable, Iterator, Sequence

# smtplib.SMTP whose DATA dot-stuffs with digest's bytes.replace instead of smtplib's regex (the same
# bytes on the wire): the raw loop with digest's one client-side speed-up, taken from digest itself.
from digest.transports.smtp_session import FastDataSMTP

HOST = "127.0.0.1"
SENDER = "news@example.org"
Message = tuple[str, str, bytes]  # (envelope from, recipient, CRLF MIME bytes)


def find_smtp_sink() -> str | None:
    """Path of Postfix's smtp-sink, or None (Debian: apt-get install postfix)."""
    return shutil.which("smtp-sink") or next(
        (p for p in ("/usr/sbin/smtp-sink", "/usr/lib/postfix/sbin/smtp-sink") if os.path.exists(p)), None)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_for_port(proc: subprocess.Popen, port: int, what: str) -> None:
    """Wait (up to 5 s) until `proc` accepts connections on 127.0.0.1:port; RuntimeError if it dies first."""
    deadline = time.monotonic() + 5
    while True:
        try:
            socket.create_connection((HOST, port), timeout=0.2).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"{what} did not start: {stderr}")
            time.sleep(0.02)


@contextlib.contextmanager
def smtp_sink(backlog: int = 1000, extra: Sequence[str] = ()) -> Iterator[int]:
    """Run `smtp-sink 127.0.0.1:PORT backlog` (as nobody when root); yield the port, stop it after."""
    sink = find_smtp_sink()
    if sink is None:
        raise RuntimeError("smtp-sink not found; install the Debian 'postfix' package")
    port = free_port()
    cmd = [sink, *extra]
    if os.geteuid() == 0:
        cmd += ["-u", "nobody"]  # smtp-sink refuses to run as root without it
    cmd += [f"{HOST}:{port}", str(backlog)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(proc, port, "smtp-sink")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _template(html: str) -> bytes:
    em = EmailMessage(policy=policy.SMTP)  # CRLF line endings, quoted-printable parts
    em["From"] = f"Innovation Hub News <{SENDER}>"
    em["To"] = "READER@example.net"
    em["Subject"] = "Learning & Innovation Highlights 2023"
    em["Message-ID"] = "<MSGID@example.org>"
    em["List-Unsubscribe"] = "<https://example.org/unsubscribe?token=TOKEN>"
    em.set_content("Learning & innovation highlights from the hub.\n" * 40)
    em.add_alternative(html, subtype="html")
    return em.as_bytes()


def build_messages(n: int, size: int = 28_600) -> list[Message]:
    """n pre-built multipart/alternative messages of about `size` bytes each (quoted-printable, CRLF)."""
    para = ("<p style=\"margin:0 0 12px;font-family:Arial,sans-serif;color:#222\">Learning &amp; innovation "
            "highlights from the hub — workshops, pilots and what we learned this year.</p>\n")
    one = len(_template(para * 2)) - len(_template(para))
    template = _template(para * max(1, 1 + (size - len(_template(para))) // one))
    out = []
    for i in range(n):
        to = f"reader{i:06d}@example.net"
        data = template.replace(b"READER@example.net", to.encode()).replace(b"MSGID", f"m{i:06d}".encode())
        out.append((SENDER, to, data))
    return out


def one_connection(port: int, messages: Sequence[Message], host: str = HOST,
                   smtp_class: type = smtplib.SMTP) -> float:
    """Send every message over one reused smtplib connection; return messages/s."""
    start = time.perf_counter()
    with smtp_class(host, port, timeout=30) as smtp:
        for sender, to, data in messages:
            smtp.sendmail(sender, [to], data)
    return len(messages) / (time.perf_counter() - start)


def connection_per_message(port: int, messages: Sequence[Message], host: str = HOST) -> float:
    """A new smtplib connection for every message (what mailmerge does); return messages/s."""
    start = time.perf_counter()
    for sender, to, data in messages:
        with smtplib.SMTP(host, port, timeout=30) as smtp:
            smtp.sendmail(sender, [to], data)
    return len(messages) / (time.perf_counter() - start)


def threaded(port: int, messages: Sequence[Message], connections: int = 8, host: str = HOST,
             smtp_class: type = smtplib.SMTP) -> float:
    """Split the messages over `connections` threads, one smtplib connection each; return messages/s."""
    chunks = [messages[i::connections] for i in range(connections)]
    ready = threading.Barrier(connections + 1)
    errors: list[BaseException] = []

    def work(chunk):
        try:
            with smtp_class(host, port, timeout=30) as smtp:
                ready.wait()
                for sender, to, data in chunk:
                    smtp.sendmail(sender, [to], data)
        except BaseException as exc:  # noqa: BLE001 - reported after the run
            errors.append(exc)
            ready.abort()

    threads = [threading.Thread(target=work, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    ready.wait()  # connections are open; time the sending only, like one_connection's steady state
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return len(messages) / elapsed


def median_rate(fn: Callable[[], float], rounds: int) -> tuple[float, list[float]]:
    """Run fn `rounds` times; (median, all rates)."""
    rates = [fn() for _ in range(rounds)]
    return statistics.median(rates), rates


def interleaved_rounds(cases: Sequence[tuple[str, Callable[[], float]]], counts: dict[str, int],
                       rounds: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Run each case once to warm up, then all cases round by round (so background load on a shared
    machine hits them alike); per case the messages/s of each round and the client CPU µs/message."""
    for _label, fn in cases:
        fn()
    rates: dict[str, list[float]] = {label: [] for label, _ in cases}
    cpu: dict[str, list[float]] = {label: [] for label, _ in cases}
    for _ in range(rounds):
        for label, fn in cases:
            c0 = time.process_time()
            rates[label].append(fn())
            cpu[label].append((time.process_time() - c0) / counts[label] * 1e6)
    return rates, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=8)
    args = ap.parse_args()
    messages = build_messages(args.messages)
    sizes = [len(m[2]) for m in messages]
    print(f"{len(messages)} messages of {statistics.mean(sizes) / 1000:.1f} KB, {args.rounds} rounds, "
          f"{os.cpu_count()} CPUs, smtp-sink at {find_smtp_sink()}")
    with smtp_sink() as port:
        third = messages[: max(1, len(messages) // 3)]  # the slow case on fewer messages
        cases = [
            ("smtplib, one connection reused", lambda: one_connection(port, messages)),
            (f"smtplib, {args.connections} connections in threads",
             lambda: threaded(port, messages, args.connections)),
            ("smtplib, a new connection per message", lambda: connection_per_message(port, third)),
        ]
        counts = {label: len(messages) for label, _ in cases}
        counts[cases[2][0]] = len(third)
        rates, cpu = interleaved_rounds(cases, counts, args.rounds)
    base = statistics.median(rates[cases[0][0]])
    print(f"{'client':42} {'msgs/s':>7} {'vs one conn':>12} {'client CPU µs/msg':>18}   msgs/s per round")
    for label, r in rates.items():
        med = statistics.median(r)
        print(f"{label:42} {med:7,.0f} {med / base:11.2f}× {statistics.median(cpu[label]):18,.0f}   "
              f"{', '.join(f'{x:,.0f}' for x in r)}")


if __name__ == "__main__":
    main()
