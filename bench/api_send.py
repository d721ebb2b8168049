"""Benchmark: one HTTP API transport (Postmark) against its local fake server on 127.0.0.1.

N OutgoingMessages are built in advance (not timed); the clock runs over send_batch calls only.
Three ways, measured in the same run (medians over --rounds):

* baseline  — one requests.post per message, no session (a new connection per message), /email/batch
              with a single item: the naive client.
* reuse     — PostmarkTransport with max_batch forced to 1: connection reuse, no batching.
* transport — PostmarkTransport as shipped: one kept-open session, 500 messages per call.

Also printed: the client-side cost alone (build_request + JSON encoding, no network).

The fake parses and validates every item in Python, so at large batches it measures the fake as much
as the client; the ratios are what carry over. Figures, not a test.

Run: .venv/bin/python bench/api_send.py [--messages 2000] [--html-kb 28] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # `tests.helpers.fake_providers`

from tests.helpers.fake_providers import FakePostmark, outgoing, settings_for  # noqa: E402


def measure_api_send(transport_name: str = "postmark", n: int = 2000, html_bytes: int = 28_000,
                     max_batch: int | None = None) -> dict:
    """Send n pre-built messages through the transport to its fake; messages/s and calls/s."""
    from digest.transports import transport_class
    from digest.transports.base import Status

    if transport_name != "postmark":
        raise ValueError("only the Postmark fake is wired into this benchmark")
    messages = outgoing(n, html_bytes=html_bytes)
    with FakePostmark() as fake, tempfile.TemporaryDirectory() as tmp:
        os.environ["POSTMARK_TOKEN"] = fake.token
        transport = transport_class(transport_name)(settings_for(Path(tmp), transport_name, fake))
        if max_batch is not None:
            transport.max_batch = max_batch
        step = transport.max_batch
        with transport:
            start = time.perf_counter()
            sent = 0
            for i in range(0, n, step):
                sent += sum(r.status is Status.SENT for r in transport.send_batch(messages[i:i + step]))
            elapsed = time.perf_counter() - start
        assert sent == n, f"only {sent} of {n} accepted"
        assert sum(fake.accepted.values()) == n
        return {"seconds": elapsed, "messages_per_s": n / elapsed, "calls": transport.calls,
                "calls_per_s": transport.calls / elapsed,
                "connections": len({c.port for c in fake.calls})}


def measure_naive(n: int = 2000, html_bytes: int = 28_000) -> dict:
    """One requests.post per message, a new connection each time (the baseline)."""
    import requests

    from digest.transports.postmark import PostmarkSettings, build_request

    messages = outgoing(n, html_bytes=html_bytes)
    with FakePostmark() as fake:
        cfg = PostmarkSettings(base_url=fake.url)
        start = time.perf_counter()
        for m in messages:
            req = build_request([m], cfg, fake.token)
            resp = requests.post(req.url, headers=dict(req.headers), data=json.dumps(req.json), timeout=(10, 60))
            assert resp.status_code == 200 and resp.json()[0]["ErrorCode"] == 0
        elapsed = time.perf_counter() - start
        return {"seconds": elapsed, "messages_per_s": n / elapsed, "calls": n, "calls_per_s": n / elapsed,
                "connections": len({c.port for c in fake.calls})}


def measure_build_only(n: int = 2000, html_bytes: int = 28_000) -> float:
    """Seconds per message for the client-side work alone: build the requests and encode the JSON."""
    from digest.transports.postmark import PostmarkSettings, build_request

    messages = outgoing(n, html_bytes=html_bytes)
    cfg = PostmarkSettings(base_url="http://127.0.0.1:9")
    start = time.perf_counter()
    for i in range(0, n, 500):
        json.dumps(build_request(messages[i:i + 500], cfg, "t").json).encode()
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--html-kb", type=float, default=28.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    size = int(args.html_kb * 1000)
    ways = {
        "baseline (new connection per message)": lambda: measure_naive(args.messages, size),
        "reuse (one session, 1 message per call)": lambda: measure_api_send("postmark", args.messages, size, 1),
        "transport (one session, 500 per call)": lambda: measure_api_send("postmark", args.messages, size),
    }
    print(f"{args.messages} messages of ~{args.html_kb:g} KB html to FakePostmark on 127.0.0.1, "
          f"median of {args.rounds} rounds")
    medians = {}
    for label, fn in ways.items():
        runs = [fn() for _ in range(args.rounds)]
        med = statistics.median(r["messages_per_s"] for r in runs)
        calls = statistics.median(r["calls_per_s"] for r in runs)
        medians[label] = med
        spread = f"{min(r['messages_per_s'] for r in runs):.0f}–{max(r['messages_per_s'] for r in runs):.0f}"
        print(f"  {label:42s} {med:8.0f} messages/s ({spread})  {calls:8.1f} calls/s  "
              f"{runs[0]['calls']} calls, {runs[0]['connections']} connection(s)")
    per = statistics.median(measure_build_only(args.messages, size) for _ in range(args.rounds))
    print(f"  client-side build + JSON encoding alone: {per * 1e6:.0f} µs per message "
          f"(≈ {1 / per:,.0f} messages/s ceiling before any network or server work)")
    base = medians["baseline (new connection per message)"]
    for label, med in medians.items():
        print(f"  ratio {label:36s} {med / base:5.2f}× baseline")


if __name__ == "__main__":
    main()
