"""`digest send` variants side by side, interleaved round by round, through Postfix smtp-sink.

Each variant is NAME=CONNECTIONS[,VAR:VALUE...] with environment settings such as
DIGEST_SEND_BATCH_SIZE:10, so one run shows what a setting costs against the default beside it.
Prints per variant the median send-phase and end-to-end rate and the client CPU per message
(digest and its builder process).

Run:  .venv/bin/python bench/send_variants.py --subscribers 6000 --rounds 3 \\
          c8=8 c8-batch10=8,DIGEST_SEND_BATCH_SIZE:10 c1=1 c1-batch10=1,DIGEST_SEND_BATCH_SIZE:10
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import smtp_raw  # noqa: E402
from send import digest_send, make_project  # noqa: E402


def parse_variant(spec: str) -> tuple[str, int, dict[str, str]]:
    """'c8-batch10=8,DIGEST_SEND_BATCH_SIZE:10' → ('c8-batch10', 8, {'DIGEST_SEND_BATCH_SIZE': '10'})."""
    name, _, rest = spec.partition("=")
    connections, *settings = rest.split(",")
    return name, int(connections), dict(item.split(":", 1) for item in settings)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=6000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("variants", nargs="+", help="NAME=CONNECTIONS[,VAR:VALUE...]")
    args = ap.parse_args()
    variants = [parse_variant(v) for v in args.variants]
    send_rate: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    e2e_rate: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    cpu: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    work = Path(tempfile.mkdtemp(prefix="digest-variants-"))
    try:
        with smtp_raw.smtp_sink() as port:
            project = make_project(work / "project", port, args.subscribers)
            for r in range(args.rounds):
                for name, connections, env in variants:
                    before = resource.getrusage(resource.RUSAGE_CHILDREN)
                    res = digest_send(project, connections, env=env)
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    send_rate[name].append(res["send_rate"])
                    e2e_rate[name].append(res["e2e_rate"])
                    used = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
                    cpu[name].append(used / res["sent"] * 1e6)
                print(f"  round {r + 1}: " + ", ".join(f"{n} {send_rate[n][-1]:,.0f}/s" for n, _, _ in variants),
                      flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = variants[0][0]
    print(f"\n{args.subscribers:,} subscribers, {args.rounds} rounds, medians (vs {base}, the first variant):")
    for name, _, _ in variants:
        send, e2e = statistics.median(send_rate[name]), statistics.median(e2e_rate[name])
        print(f"  {name:20} send {send:7,.0f}/s ({send / statistics.median(send_rate[base]):.2f}×)  "
              f"end to end {e2e:7,.0f}/s  client CPU {statistics.median(cpu[name]):6,.0f} µs/message")


if __name__ == "__main__":
    main()
