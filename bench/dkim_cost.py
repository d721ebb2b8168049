"""What DKIM signing costs: unsigned beside RSA 2048 and ed25519 in the same run, medians.

Two figures, each round interleaving the three variants:
- the build step alone (make_build over N rows of the example issue: personalise, MIME, sign) in
  this process, messages/s;
- `digest send ISSUE --yes --transport smtp` to N generated readers through Postfix smtp-sink on
  127.0.0.1 (bench/send.py's set-up), the summary's send-phase messages/s. At N >= 2000 on two cores
  the build (and so the signing) runs in a builder process beside the sending thread.

Run:  .venv/bin/python bench/dkim_cost.py [--subscribers 5000] [--build 2000] [--rounds 5] [--connections 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import send as send_bench  # noqa: E402  (bench/send.py: the project, the child run)
import smtp_raw  # noqa: E402

VARIANTS = ("unsigned", "rsa-sha256", "ed25519-sha256")


def write_keys(project: Path) -> dict[str, str]:
    """A 2048-bit RSA and an ed25519 key (0600) in the project; variant → the [dkim] lines to append."""
    from digest.delivery.dkimkeys import generate_pem

    tables = {"unsigned": ""}
    for alg in VARIANTS[1:]:
        path = project / f"{alg}.pem"
        path.write_bytes(generate_pem(alg))
        path.chmod(0o600)
        tables[alg] = f'\n[dkim]\nselector = "bench"\nalgorithm = "{alg}"\nkey_file = "{path.name}"\n'
    return tables


def use_variant(project: Path, base: str, tables: dict[str, str], variant: str) -> None:
    (project / "digest.toml").write_text(base + tables[variant], encoding="utf-8")


def build_rate(project: Path, n: int) -> float:
    """Messages/s of the build step (personalise + MIME + sign) for n readers, in this process."""
    from digest.config import load_settings
    from digest.delivery.job import SendJob
    from digest.store.rows import RecipientRow

    settings = load_settings(project / "digest.toml", env={})
    job = SendJob(settings, send_bench.ISSUE, list_path=project / "list.csv")
    build = job.builder()
    rows = [RecipientRow(id=i, key=f"reader{i:07d}@example.net", email=f"reader{i:07d}@example.net",
                         name=f"Reader{i} Example", fields={"first_name": f"Reader{i}"}, tags=(), line=i + 2)
            for i in range(n)]
    build(rows[:50])  # warm the skeleton's segment caches
    start = time.perf_counter()
    for i in range(0, n, 50):
        build(rows[i:i + 50])
    return n / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=5000)
    ap.add_argument("--build", type=int, default=2000, help="readers per build-step round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=1)
    args = ap.parse_args()
    os.environ["DIGEST_UNSUBSCRIBE_KEYS"] = send_bench.KEYS
    work = Path(tempfile.mkdtemp(prefix="digest-bench-dkim-"))
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    build: dict[str, list[float]] = {v: [] for v in VARIANTS}
    sent: dict[str, list[float]] = {v: [] for v in VARIANTS}
    try:
        with smtp_raw.smtp_sink() as port:
            project = send_bench.make_project(work / "project", port, args.subscribers)
            base = (project / "digest.toml").read_text(encoding="utf-8")
            tables = write_keys(project)
            for r in range(args.rounds):
                for v in VARIANTS:
                    use_variant(project, base, tables, v)
                    build[v].append(build_rate(project, args.build))
                    sent[v].append(send_bench.digest_send(project, args.connections)["send_rate"])
                print(f"  round {r + 1}: " + " · ".join(f"{v} build {build[v][-1]:,.0f}/s send {sent[v][-1]:,.0f}/s"
                                                       for v in VARIANTS), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nmedians of {args.rounds} rounds (messages/s; ratio to unsigned in the same run):")
    for name, data in (("build step", build), (f"digest send, {args.subscribers:,} readers", sent)):
        base_rate = statistics.median(data["unsigned"])
        cells = [f"{v} {statistics.median(data[v]):,.0f} ({statistics.median(data[v]) / base_rate:.2f}×)"
                 for v in VARIANTS]
        print(f"  {name:32} " + " · ".join(cells))


if __name__ == "__main__":
    main()
