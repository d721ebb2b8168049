"""digest's send loop + ledger + SMTPTransport (--connections 1, 2, 4, 8) vs raw smtplib, pre-built messages.

Answers: what do the send loop, the ledger and the transport cost over a bare smtplib loop, and
what does --connections N gain — on smtp-sink on this machine, and (--latency-ms) on a server
whose every round trip takes that long (bench/latency_proxy.py in front of the sink).
With --tls: the send loop (one connection) over STARTTLS and over implicit TLS beside plain text,
all to the same local sink that speaks TLS (bench/tls_sink.py; smtp-sink has none), plus a raw
smtplib STARTTLS loop with Nagle's algorithm left on (what every TLS send cost before TCP_NODELAY).
Run:  .venv/bin/python bench/smtp_transport.py [--messages 3000] [--rounds 3] [--batch 50]
      .venv/bin/python bench/smtp_transport.py --latency-ms 10 --messages 400
      .venv/bin/python bench/smtp_transport.py --tls --messages 1000 --rounds 5
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # `tests.helpers` (the test certificate)

from latency_proxy import latency_proxy  # noqa: E402
from smtp_raw import (HOST, FastDataSMTP, build_messages, interleaved_rounds, one_connection,  # noqa: E402
                      smtp_sink, threaded)
from tls_sink import tls_sink  # noqa: E402

from digest.config import load_settings  # noqa: E402
from digest.store.ledger import Ledger  # noqa: E402
from digest.delivery.options import RunOptions  # noqa: E402
from digest.delivery.loop import SendLoop
from digest.outgoing import OutgoingMessage  # noqa: E402
from digest.transports.smtp import SMTPTransport  # noqa: E402


def send_loop_rate(port: int, raw, connections: int, batch: int, security: str = "none",
                   ca_file: str | None = None) -> float:
    """Messages/s of SendLoop (claim, hand to N transports, record in a fresh SQLite ledger) over
    pre-built messages: digest send without the building (connections opened before the clock)."""
    by_email = {to: (sender, data) for sender, to, data in raw}

    def build(rows):
        return [OutgoingMessage(recipient_id=r.id, to_email=r.email, to_name="", from_addr=by_email[r.email][0],
                                envelope_from=by_email[r.email][0], reply_to=None, subject="", html="", text="",
                                message_id=f"<m{r.id}@example.org>", mime=by_email[r.email][1]) for r in rows]

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "digest.toml").write_text("", encoding="utf-8")
        settings = load_settings(Path(tmp) / "digest.toml", env={})
        settings.transports["smtp"] = {"host": HOST, "port": port, "security": security,
                                       **({"ca_file": ca_file} if ca_file else {})}
        with Ledger(Path(tmp) / "ledger.sqlite3") as ledger:
            send = ledger.create_send("bench", content_fp="", list_fp="", settings_fp="", list_path="", subject="",
                                      recipients=((to, to, "", {}, (), i) for i, (_, to, _) in enumerate(raw)))
            transports = [SMTPTransport(settings) for _ in range(connections)]
            try:
                for t in transports:
                    t.open()
                stats = SendLoop(ledger, send.id, transports, build,
                                 RunOptions(batch_size=batch, connections=connections)).run()
            finally:
                for t in transports:
                    t.close()
    assert stats.sent == len(raw), (stats.sent, stats.last_errors)
    return stats.sent / stats.duration


def raw_starttls_nagle(port: int, messages, ca_file: str) -> float:
    """A plain smtplib STARTTLS loop over one connection, Nagle's algorithm left on; messages/s."""
    import smtplib
    import ssl
    import time

    start = time.perf_counter()
    with smtplib.SMTP(HOST, port, timeout=30) as smtp:
        smtp.starttls(context=ssl.create_default_context(cafile=ca_file))
        for sender, to, data in messages:
            smtp.sendmail(sender, [to], data)
    return len(messages) / (time.perf_counter() - start)


def tls_rows(args) -> None:
    """--tls: the send loop over STARTTLS and implicit TLS beside plain text, one sink, one run."""
    from tests.helpers.smtp_server import make_cert

    raw = build_messages(args.messages)
    nagle = raw[: max(20, len(raw) // 20)]  # ~40 ms a message: a twentieth is enough to see it
    with tempfile.TemporaryDirectory() as tmp:
        cert = make_cert(Path(tmp), "127.0.0.1")
        ca = str(cert.cert)
        print(f"{len(raw)} messages of {statistics.mean(len(m[2]) for m in raw) / 1000:.1f} KB, a local TLS-capable "
              f"sink (bench/tls_sink.py) on 127.0.0.1, one connection, batches of {args.batch}, "
              f"{args.rounds} rounds (median)")
        with tls_sink("none") as plain, tls_sink("starttls", cert.cert, cert.key) as starttls, \
                tls_sink("tls", cert.cert, cert.key) as implicit:
            cases = [("send loop, plain text", lambda: send_loop_rate(plain, raw, 1, args.batch)),
                     ("send loop, STARTTLS", lambda: send_loop_rate(starttls, raw, 1, args.batch, "starttls", ca)),
                     ("send loop, implicit TLS", lambda: send_loop_rate(implicit, raw, 1, args.batch, "tls", ca)),
                     ("raw smtplib STARTTLS, Nagle on", lambda: raw_starttls_nagle(starttls, nagle, ca))]
            counts = {label: len(raw) for label, _ in cases}
            counts[cases[-1][0]] = len(nagle)
            rates, cpu = interleaved_rounds(cases, counts, args.rounds)
    report(cases, rates, cpu, "vs plain")


def report(cases, rates, cpu, versus: str) -> None:
    """The table: median messages/s, the ratio to the first case, client CPU, every round."""
    base = statistics.median(rates[cases[0][0]])
    print(f"{'client':40} {'msgs/s':>7} {versus:>14} {'client CPU µs/msg':>18}   msgs/s per round")
    for label, _ in cases:
        med = statistics.median(rates[label])
        print(f"{label:40} {med:7,.0f} {med / base:13.2f}× {statistics.median(cpu[label]):18,.0f}   "
              f"{', '.join(f'{r:,.0f}' for r in rates[label])}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--latency-ms", type=float, default=0,
                    help="one-way delay added by a proxy in front of the sink (0 = none)")
    ap.add_argument("--tls", action="store_true", help="plain text vs STARTTLS vs implicit TLS (no smtp-sink needed)")
    args = ap.parse_args()
    if args.tls:
        tls_rows(args)
        return
    raw = build_messages(args.messages)
    where = f"through a proxy adding {args.latency_ms:g} ms each way" if args.latency_ms else "on 127.0.0.1"
    print(f"{len(raw)} messages of {statistics.mean(len(m[2]) for m in raw) / 1000:.1f} KB, smtp-sink {where}, "
          f"batches of {args.batch}, {args.rounds} rounds (median)")
    # With latency, a case with n connections sends n/8 of the messages (one connection is slow).
    share = (lambda n: raw[: max(2 * args.batch * n, len(raw) * n // 8)]) if args.latency_ms else (lambda n: raw)
    with smtp_sink() as sink_port, (latency_proxy(sink_port, args.latency_ms) if args.latency_ms
                                    else contextlib.nullcontext(sink_port)) as port:
        cases = [("raw smtplib, one connection", 1, lambda: one_connection(port, share(1))),
                 ("raw smtplib, 8 connections in threads", 8, lambda: threaded(port, share(8), 8)),
                 ("raw smtplib + dot_stuff, one connection", 1,
                  lambda: one_connection(port, share(1), smtp_class=FastDataSMTP)),
                 ("raw smtplib + dot_stuff, 8 connections", 8,
                  lambda: threaded(port, share(8), 8, smtp_class=FastDataSMTP))]
        cases += [(f"send loop, --connections {n}", n, lambda n=n: send_loop_rate(port, share(n), n, args.batch))
                  for n in (1, 2, 4, 8)]
        counts = {label: len(share(n)) for label, n, _ in cases}
        cases = [(label, fn) for label, _, fn in cases]
        rates, cpu = interleaved_rounds(cases, counts, args.rounds)
    report(cases, rates, cpu, "vs raw 1 conn")


if __name__ == "__main__":
    main()
