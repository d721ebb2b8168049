"""`digest serve` under load: one-click unsubscribe POSTs against the running waitress server.

Three kinds of request, against the same server in the same run, each measured --rounds times
(medians reported):
- baseline: GET of an unknown path (404 text): waitress, werkzeug routing, nothing of digest's;
- the page: GET /unsubscribe?token=… (the token verified, the page rendered; nothing written);
- one-click: POST /unsubscribe?token=… with `List-Unsubscribe=One-Click`, each for another address
  (a new suppression row per request: a ledger transaction with fsync, as in production).
Clients: --clients threads, each with its own keep-alive connection, --requests in all per round.
(tests/web/test_unsubscribe_load.py checks the same POSTs while a real send writes the ledger.)

Run:  .venv/bin/python bench/serve.py [--requests 2000] [--clients 16] [--threads 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
KEYS = "k1:Vb2Nq7XcL4pZr9Td1Hs6Wm3Fk8Jg0Ye5Ua_Ri-Ox2Ql"  # a bench key, made like the docs say
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def project_copy(tmp: Path) -> Path:
    """The example project in a temporary folder (its ledger is the bench's)."""
    root = tmp / "project"
    root.mkdir()
    shutil.copy(REPO / "digest.toml", root / "digest.toml")
    shutil.copytree(REPO / "issues", root / "issues")
    shutil.copytree(REPO / "templates", root / "templates")
    return root


def run_round(port: int, requests: list[tuple[str, str, str | None]], clients: int) -> tuple[float, float]:
    """(requests per second, p99 latency in ms) of one round; every answer must be 2xx or the 404 asked for."""
    latencies: list[float] = []
    lock = threading.Lock()
    chunks = [requests[i::clients] for i in range(clients)]
    failures: list[str] = []

    def client(chunk):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = []
        for method, path, body in chunk:
            start = time.perf_counter()
            conn.request(method, path, body=body, headers=FORM if body else {})
            answer = conn.getresponse()
            answer.read()
            mine.append(time.perf_counter() - start)
            if answer.status >= 500 or (answer.status >= 400 and "nowhere" not in path):
                failures.append(f"{method} {path[:40]}: {answer.status}")
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(c,)) for c in chunks]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if failures:
        raise SystemExit(f"{len(failures)} failed requests, e.g. {failures[:3]}")
    latencies.sort()
    return len(requests) / wall, latencies[int(0.99 * (len(latencies) - 1))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--threads", type=int, default=8, help="waitress threads (digest serve --threads)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    os.environ["DIGEST_UNSUBSCRIBE_KEYS"] = KEYS
    from digest.audience.tokens import KeyRing
    from digest.config import load_settings
    from digest.newsletter import newsletter_identity
    from digest.web.server import start_server

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(project_copy(Path(tmp)) / "digest.toml")
        ring, nl = KeyRing.parse(KEYS), newsletter_identity(settings).newsletter_id
        server = start_server(settings, port=0, threads=args.threads).serve_in_thread()
        try:
            token = ring.sign(nl, "page.reader@example.net")
            kinds = {
                "baseline (404)": lambda r, i: ("GET", "/nowhere", None),
                "page (GET)": lambda r, i: ("GET", f"/unsubscribe?token={token}", None),
                "one-click POST": lambda r, i: ("POST", f"/unsubscribe?token={ring.sign(nl, f'r{r}n{i}@example.net')}",
                                                "List-Unsubscribe=One-Click"),
            }
            results = {}
            for name, make in kinds.items():
                rounds = [run_round(server.port, [make(r, i) for i in range(args.requests)], args.clients)
                          for r in range(args.rounds)]
                results[name] = (statistics.median(x[0] for x in rounds), statistics.median(x[1] for x in rounds))
        finally:
            server.close()
    base = results["baseline (404)"][0]
    print(f"{args.requests} requests x {args.rounds} rounds, {args.clients} clients, {args.threads} waitress threads "
          f"(medians)")
    for name, (rps, p99) in results.items():
        print(f"  {name:16} {rps:8.0f} requests/s   p99 {p99:7.1f} ms   ({rps / base:.2f} x baseline)")


if __name__ == "__main__":
    main()
