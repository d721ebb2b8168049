"""digest's SMTPTransport (connections = 1, 2, 4, 8) vs the raw smtplib loop, on Postfix smtp-sink.

Answers: what does the transport's bookkeeping cost, and does --connections N help under the GIL?
Run:  /tmp/venv/bin/python bench/smtp_transport.py [--messages 3000] [--rounds 3] [--batch 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from smtp_raw import HOST, build_messages, interleaved_rounds, one_connection, smtp_sink, threaded  # noqa: E402

from digest.config import load_settings  # noqa: E402
from digest.transports.base import OutgoingMessage  # noqa: E402
from digest.transports.smtp import SMTPTransport  # noqa: E402


def outgoing(messages) -> list[OutgoingMessage]:
    """The pre-built messages as the send loop hands them to a transport."""
    return [OutgoingMessage(recipient_id=i, to_email=to, to_name="", from_addr=sender, envelope_from=sender,
                            reply_to=None, subject="", html="", text="", message_id=f"<m{i}@example.org>",
                            mime=data) for i, (sender, to, data) in enumerate(messages)]


def transport_rate(port: int, msgs: list[OutgoingMessage], connections: int, batch: int) -> float:
    """Messages/s through SMTPTransport.send_batch (connections opened before the clock starts)."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "digest.toml").write_text("", encoding="utf-8")
        settings = load_settings(Path(tmp) / "digest.toml", env={})
        settings.transports["smtp"] = {"host": HOST, "port": port, "security": "none"}
        with SMTPTransport(settings, connections=connections) as t:
            start = time.perf_counter()
            for i in range(0, len(msgs), batch):
                results = t.send_batch(msgs[i:i + batch])
                assert all(r.status.value == "sent" for r in results), results[0]
            return len(msgs) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=50)
    args = ap.parse_args()
    raw = build_messages(args.messages)
    msgs = outgoing(raw)
    print(f"{len(msgs)} messages of {statistics.mean(len(m.mime) for m in msgs) / 1000:.1f} KB, "
          f"batches of {args.batch}, {args.rounds} rounds (median)")
    with smtp_sink() as port:
        cases = [("raw smtplib, one connection", lambda: one_connection(port, raw)),
                 ("raw smtplib, 8 connections in threads", lambda: threaded(port, raw, 8))]
        cases += [(f"SMTPTransport, connections={n}", lambda n=n: transport_rate(port, msgs, n, args.batch))
                  for n in (1, 2, 4, 8)]
        counts = {label: len(msgs) for label, _ in cases}
        rates, cpu = interleaved_rounds(cases, counts, args.rounds)
    base = statistics.median(rates[cases[0][0]])
    print(f"{'client':40} {'msgs/s':>7} {'vs raw 1 conn':>14} {'client CPU µs/msg':>18}   msgs/s per round")
    for label, _ in cases:
        med = statistics.median(rates[label])
        print(f"{label:40} {med:7,.0f} {med / base:13.2f}× {statistics.median(cpu[label]):18,.0f}   "
              f"{', '.join(f'{r:,.0f}' for r in rates[label])}")


if __name__ == "__main__":
    main()
