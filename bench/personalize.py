"""Benchmark: per-recipient messages for the example issue — MimeSkeleton.build vs the EmailMessage way.

For each generated recipient: Personalizer.message_for (slot filling, signed unsubscribe link), then
the MIME bytes. The fast path runs over every recipient; the EmailMessage way (reference_mime) runs
over a sample and is extrapolated (it says so). Medians over several rounds, the ratio, and the peak
memory of a fresh process streaming 10,000 vs 100,000 recipients (messages are never collected).

Run: .venv/bin/python bench/personalize.py [--recipients 100000] [--sample 2000] [--rounds 3]
Figures, not a test.
"""

from __future__ import annotations

import argparse
import email
import itertools
import email.policy
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ISSUE = REPO / "issues" / "2023-12-learning-innovation-highlights.yaml"
BENCH_KEYS = "k1:Tq8fWz3LmR0vYc6NpX2hJs9KdG4bE7aU1oIyV5tQnMe"  # a fixed key: signing cost is part of personalising
NAMES = ["Ann de Vries", "Zoë Ångström", "王小明", "Kwame Mensah", "Fatima Zahra El Idrissi", "Bob",
         "José Álvarez", "", "Ngozi Okonkwo-Adeyemi", "Priya Raman"]

sys.path.insert(0, str(REPO / "src"))


def setup():
    """Render the example issue once and prepare a Personalizer (the once-per-issue work)."""
    from digest.config import load_settings
    from digest.compose.issue import load_issue
    from digest.delivery.personalize import Personalizer
    from digest.compose.render import render_issue
    from digest.audience.tokens import KeyRing

    settings = load_settings(REPO / "digest.toml", env={})
    rendered = render_issue(load_issue(ISSUE), settings)
    personalizer = Personalizer(rendered, settings, KeyRing.parse(BENCH_KEYS))
    return rendered, personalizer


def recipients(n: int):
    """Generated subscribers, streamed (some non-ASCII names, every 10th on an IDN domain)."""
    from digest.audience.subscribers import Subscriber

    for i in range(n):
        name = NAMES[i % len(NAMES)]
        domain = "bücher.de" if i % 10 == 3 else "example.org"
        addr = f"reader{i}@{domain}"
        first = name.split(" ")[0] if name else ""
        yield Subscriber(email=addr, name=name, fields={"email": addr, "name": name, "first_name": first},
                         line=i + 2)


def run(personalizer, subscribers, build) -> tuple[float, float, int, int]:
    """(seconds in total, seconds in the build step, bytes built, messages) over (index, subscriber)s."""
    clock = time.perf_counter
    in_build = 0.0
    size = count = 0
    start = clock()
    for i, sub in subscribers:
        msg = personalizer.message_for(sub, i)
        t = clock()
        raw = build(msg)
        in_build += clock() - t
        size += len(raw)
        count += 1
    return clock() - start, in_build, size, count


def interleaved_round(personalizer, skeleton, n_fast: int, n_ref: int, blocks: int = 50):
    """Both ways in alternating blocks, so that both see the same load on a shared machine."""
    from digest.delivery.mime import reference_mime

    fast_subs, ref_subs = enumerate(recipients(n_fast)), enumerate(recipients(n_ref))
    fast = [0.0, 0.0, 0, 0]
    ref = [0.0, 0.0, 0, 0]
    for b in range(blocks):
        take_fast = n_fast * (b + 1) // blocks - n_fast * b // blocks
        take_ref = n_ref * (b + 1) // blocks - n_ref * b // blocks
        for acc, subs, take, build in ((fast, fast_subs, take_fast, skeleton.build),
                                       (ref, ref_subs, take_ref, reference_mime)):
            for k, v in enumerate(run(personalizer, itertools.islice(subs, take), build)):
                acc[k] += v
    return fast, ref


def decoded(raw: bytes) -> tuple:
    m = email.message_from_bytes(raw, policy=email.policy.default)
    heads = sorted((k, str(v).strip()) for k, v in m.items() if k not in ("Content-Type", "Date"))
    return heads, [p.get_content() for p in m.iter_parts()]


def sanity(personalizer, skeleton, n: int = 20) -> None:
    """Both ways must produce the same message, or the comparison means nothing."""
    from digest.delivery.mime import reference_mime

    for i, sub in enumerate(recipients(n)):
        msg = personalizer.message_for(sub, i)
        if decoded(skeleton.build(msg)) != decoded(reference_mime(msg)):
            raise SystemExit(f"fast and EmailMessage messages differ for {sub.email}")


def rss_kb() -> tuple[int, int]:
    """(current RSS, peak RSS) of this process in KiB, from /proc/self/status."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def memory_child(n: int) -> None:
    """Stream n recipients through personalise + build in this (fresh) process; print memory figures."""
    from digest.delivery.mime import MimeSkeleton

    _, personalizer = setup()
    skeleton = MimeSkeleton(from_addr=personalizer.from_addr, reply_to=personalizer.reply_to)
    before = rss_kb()
    total, _, size, _ = run(personalizer, enumerate(recipients(n)), skeleton.build)
    after = rss_kb()
    print(json.dumps({"n": n, "rss_before": before[0], "peak_before": before[1], "rss_after": after[0],
                      "peak_after": after[1], "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      "seconds": total, "bytes": size}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=100_000, help="fast path: recipients per round")
    parser.add_argument("--sample", type=int, default=2_000, help="EmailMessage way: recipients per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory", type=int, nargs="*", default=[10_000, 100_000],
                        help="recipient counts for the memory runs (fresh process each); none to skip")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return

    from digest.delivery.mime import MimeSkeleton

    t = time.perf_counter()
    rendered, personalizer = setup()
    render_s = time.perf_counter() - t
    skeleton = MimeSkeleton(from_addr=personalizer.from_addr, reply_to=personalizer.reply_to)
    one = skeleton.build(personalizer.message_for(next(recipients(1)), 0))
    print(f"example issue {ISSUE.name}: rendered once in {render_s:.2f} s (imports included); "
          f"html {len(rendered.html.raw):,} chars, text {len(rendered.text.raw):,} chars, "
          f"one message {len(one) / 1000:.1f} KB")
    sanity(personalizer, skeleton)
    print("sanity: both ways parse back to the same headers and bodies for 20 recipients")
    print(f"{args.rounds} rounds: fast path over {args.recipients:,} recipients, EmailMessage way over a "
          f"sample of {args.sample:,} (extrapolated below), in 50 alternating blocks per round")

    fast, fast_build, ref, ref_build = [], [], [], []
    for r in range(1, args.rounds + 1):
        (total, in_build, size, _), (rtotal, rbuild, _, _) = interleaved_round(
            personalizer, skeleton, args.recipients, args.sample)
        fast.append(args.recipients / total)
        fast_build.append(args.recipients / in_build)
        ref.append(args.sample / rtotal)
        ref_build.append(args.sample / rbuild)
        print(f"  round {r}: fast {args.recipients:,} in {total:6.1f} s = {fast[-1]:7,.0f} msg/s "
              f"(build step {in_build / args.recipients * 1000:.3f} ms/msg, {size / 1e9:.2f} GB built) | "
              f"EmailMessage {args.sample:,} in {rtotal:5.1f} s = {ref[-1]:5,.0f} msg/s "
              f"(build step {rbuild / args.sample * 1000:.2f} ms/msg) | ratio {fast[-1] / ref[-1]:.1f}×",
              flush=True)

    med = statistics.median
    print(f"median of {args.rounds} rounds (personalise + build, per recipient):")
    print(f"  fast path (MimeSkeleton.build)  {med(fast):7,.0f} msg/s  → {args.recipients:,} recipients "
          f"in {args.recipients / med(fast):,.0f} s (measured)")
    print(f"  EmailMessage way                {med(ref):7,.0f} msg/s  → {args.recipients:,} recipients "
          f"in ~{args.recipients / med(ref):,.0f} s (extrapolated from {args.sample:,})")
    print(f"  ratio {med(fast) / med(ref):.1f}×  (build step alone: {med(fast_build):,.0f} vs "
          f"{med(ref_build):,.0f} msg/s = {med(fast_build) / med(ref_build):.1f}×; target ≥ 5×)")

    if args.memory:
        print("memory, fast path streaming in a fresh process (VmHWM = peak RSS):")
        for n in args.memory:
            out = subprocess.run([sys.executable, __file__, "--memory-child", str(n)], check=True,
                                 capture_output=True, text=True).stdout
            m = json.loads(out)
            print(f"  {n:>7,} recipients: peak {m['peak_after'] / 1024:6.1f} MiB "
                  f"(peak {m['peak_before'] / 1024:.1f} MiB after rendering, before the loop; "
                  f"RSS at the end {m['rss_after'] / 1024:.1f} MiB; {m['bytes'] / 1e9:.2f} GB built "
                  f"in {m['seconds']:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
