"""`digest send` end to end through Postfix smtp-sink, beside raw smtplib loops and mailmerge, in one run.

What is compared (all against the same smtp-sink on 127.0.0.1, same machine, same run):
- raw smtplib, one reused connection / 8 connections in threads, sending the SAME message bytes
  digest produces for the example issue, built in advance (the issue's baseline); and the same two
  loops with smtplib's regex dot-stuffing replaced by digest's `dot_stuff` (a stricter ceiling:
  that regex is most of raw smtplib's client CPU on a 66 KB message);
- `digest send ISSUE --yes --transport smtp` to N generated subscribers, as a child process, with
  --connections 1 and 8: its own send-phase rate (the summary's "messages/s") and the end-to-end
  rate (N / wall time of the whole command: start-up, render, fixing the audience, sending);
- mailmerge 2.3.0 (its own venv, --mailmerge-command) sending the issue's text + HTML to M readers;
- peak memory (ru_maxrss of the child) at N and at --big subscribers (the big list is fixed in the
  ledger in full and its first N are sent: memory does not grow with messages sent, only with the list).

Run:  .venv/bin/python bench/send.py [--subscribers 20000] [--rounds 3] [--raw-messages 2000]
                                         [--mailmerge 600] [--big 200000]
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import smtp_raw  # noqa: E402  (bench/smtp_raw.py: smtp-sink and the raw smtplib loops)

REPO = Path(__file__).resolve().parent.parent
ISSUE = "2023-12-learning-innovation-highlights"
KEYS = "k1:Vb2Nq7XcL4pZr9Td1Hs6Wm3Fk8Jg0Ye5Ua_Ri-Ox2Ql"
SUMMARY_RATE = re.compile(r"duration\s+([\d.]+) s \(([\d,]+) messages/s\)")


def make_project(folder: Path, port: int, subscribers: int) -> Path:
    """A copy of the example project pointed at smtp-sink, with `subscribers` generated readers."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "digest.toml", folder / "digest.toml")
    for sub in ("issues", "templates"):
        shutil.copytree(REPO / sub, folder / sub, dirs_exist_ok=True)
    with open(folder / "digest.toml", "a", encoding="utf-8") as fh:
        fh.write(f'\n[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n')
    write_list(folder / "list.csv", subscribers)
    return folder


def write_list(path: Path, n: int) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["email", "first_name", "last_name", "organisation", "tags"])
        for i in range(n):
            w.writerow([f"reader{i:07d}@example.net", f"Reader{i}", "Example", "Some Organisation", "members"])


def env_for() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(DIGEST_UNSUBSCRIBE_KEYS=KEYS, DIGEST_SEND_TRANSPORT="smtp", DIGEST_PATHS_SUBSCRIBERS="list.csv")
    return env


# Linux keeps a process's peak RSS across exec, so a child forked from this (large) benchmark
# process would report at least our size. A tiny fresh interpreter forks and execs the command
# instead, and reports the child's ru_maxrss from wait4 through a pipe.
_RSS_WRAPPER = (
    "import os,sys\n"
    "fd=int(sys.argv[1])\n"
    "pid=os.fork()\n"
    "if pid==0:\n    os.close(fd)\n    os.execvp(sys.argv[2], sys.argv[2:])\n"
    "_,st,ru=os.wait4(pid,0)\n"
    "os.write(fd, str(ru.ru_maxrss).encode())\n"
    "sys.exit(os.waitstatus_to_exitcode(st))\n")


def run_child(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str, float, int]:
    """Run a command; (exit code, stdout+stderr, wall seconds, the command's peak RSS in KB)."""
    out = tempfile.TemporaryFile()
    rss_r, rss_w = os.pipe()
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", _RSS_WRAPPER, str(rss_w), *cmd], cwd=cwd, env=env,
                            stdout=out, stderr=subprocess.STDOUT, pass_fds=(rss_w,))
    os.close(rss_w)
    rss = os.read(rss_r, 64)
    os.close(rss_r)
    proc.wait()
    wall = time.perf_counter() - start
    out.seek(0)
    return proc.returncode, out.read().decode("utf-8", "replace"), wall, int(rss or 0)


def digest_send(project: Path, connections: int, extra: list[str] = (), env: dict[str, str] | None = None) -> dict:
    """One fresh `digest send --yes` (state folder wiped first); rates, wall time and peak RSS.
    `env` adds to the environment (e.g. DIGEST_SEND_BATCH_SIZE)."""
    shutil.rmtree(project / ".digest", ignore_errors=True)
    cmd = [sys.executable, "-m", "digest", "send", ISSUE, "--yes", "--connections", str(connections), *extra]
    code, text, wall, rss = run_child(cmd, project, {**env_for(), **(env or {})})
    m = SUMMARY_RATE.search(text)
    sent = re.search(r"sent\s+([\d,]+)", text)
    if code != 0 or not m or not sent:
        raise RuntimeError(f"digest send failed ({code}):\n{text[-3000:]}")
    n = int(sent.group(1).replace(",", ""))
    return {"sent": n, "send_rate": n / float(m.group(1)), "e2e_rate": n / wall, "wall": wall, "rss_kb": rss}


def built_messages(project: Path, n: int) -> list[tuple[str, str, bytes]]:
    """n of digest's own messages for the example issue, built in advance (for the raw loops)."""
    os.environ["DIGEST_UNSUBSCRIBE_KEYS"] = KEYS
    from digest.config import load_settings
    from digest.store.rows import RecipientRow
    from digest.delivery.job import SendJob

    settings = load_settings(project / "digest.toml", env={})
    job = SendJob(settings, ISSUE, list_path=project / "list.csv")
    rows = [RecipientRow(id=i, key=f"reader{i:07d}@example.net", email=f"reader{i:07d}@example.net",
                         name=f"Reader{i} Example", fields={"first_name": f"Reader{i}"}, tags=(), line=i + 2)
            for i in range(n)]
    return [(m.envelope_from, m.to_email, m.mime) for m in job.builder()(rows)]


def mailmerge_files(folder: Path, project: Path, port: int, n: int) -> list[str]:
    """mailmerge's own config, template (the issue's text + HTML) and database; returns its arguments."""
    os.environ["DIGEST_UNSUBSCRIBE_KEYS"] = KEYS
    from digest.config import load_settings
    from digest.delivery.job import SendJob

    settings = load_settings(project / "digest.toml", env={})
    job = SendJob(settings, ISSUE)
    html, text = job.personalizer.web_version()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "server.conf").write_text(f"[smtp_server]\nhost = 127.0.0.1\nport = {port}\n", encoding="utf-8")
    boundary = "=_mailmerge_bench"
    template = (
        "TO: {{email}}\nSUBJECT: " + job.issue.subject + "\nFROM: " + job.personalizer.from_addr + "\n"
        "MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"" + boundary + "\"\n\n"
        "--" + boundary + "\nContent-Type: text/plain; charset=utf-8\n\nDear {{first_name}},\n"
        "{% raw %}" + text + "{% endraw %}\n"
        "--" + boundary + "\nContent-Type: text/html; charset=utf-8\n\n{% raw %}" + html + "{% endraw %}\n"
        "--" + boundary + "--\n")
    (folder / "template.txt").write_text(template, encoding="utf-8")
    write_list(folder / "database.csv", n)
    return ["--no-dry-run", "--no-limit", "--output-format", "raw", "--template", str(folder / "template.txt"),
            "--database", str(folder / "database.csv"), "--config", str(folder / "server.conf")]


def api_send(project: Path, n: int, rounds: int) -> dict[str, list[float]]:
    """`digest send --transport postmark` to the local Postmark stand-in (tests/helpers/fake_providers.py)."""
    sys.path.insert(0, str(REPO))
    from tests.helpers.fake_providers import FakePostmark

    write_list(project / "list.csv", n)
    rates: dict[str, list[float]] = {"api": [], "api_calls": []}
    for _ in range(rounds):
        with FakePostmark() as fake:
            env = env_for()
            env.update(DIGEST_SEND_TRANSPORT="postmark", DIGEST_POSTMARK_BASE_URL=fake.url,
                       POSTMARK_TOKEN=fake.token)
            shutil.rmtree(project / ".digest", ignore_errors=True)
            code, text, wall, _ = run_child([sys.executable, "-m", "digest", "send", ISSUE, "--yes"], project, env)
            m = SUMMARY_RATE.search(text)
            if code != 0 or not m:
                raise RuntimeError(f"digest send via postmark failed ({code}):\n{text[-3000:]}")
            seconds = float(m.group(1))
            rates["api"].append(n / seconds)
            rates["api_calls"].append(len(fake.calls) / seconds)
            fake.calls.clear()
        print(f"  postmark round: {rates['api'][-1]:,.0f} messages/s, {rates['api_calls'][-1]:.1f} calls/s", flush=True)
    return rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--raw-messages", type=int, default=2000, help="messages per raw smtplib round")
    ap.add_argument("--mailmerge", type=int, default=600, help="messages mailmerge sends (0 = skip)")
    ap.add_argument("--mailmerge-command", default="/tmp/mmvenv/bin/mailmerge",
                    help="mailmerge installed in its own venv: python -m venv /tmp/mmvenv && /tmp/mmvenv/bin/pip install mailmerge")
    ap.add_argument("--big", type=int, default=200_000, help="list size for the memory figure (0 = skip)")
    ap.add_argument("--api", type=int, default=5_000,
                    help="readers sent through the postmark transport to its local fake API (0 = skip)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="digest-bench-"))
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start; smtp-sink {smtp_raw.find_smtp_sink()}")
    results: dict[str, list[float]] = {}
    try:
        with smtp_raw.smtp_sink() as port:
            project = make_project(work / "project", port, args.subscribers)
            messages = built_messages(project, args.raw_messages)
            size = statistics.mean(len(m[2]) for m in messages)
            print(f"message: the example issue as digest builds it, {size / 1000:.1f} KB (quoted-printable, CRLF)")
            smtp_raw.one_connection(port, messages[:200])  # warm-up
            mm_args = mailmerge_files(work / "mailmerge", project, port, args.mailmerge) if args.mailmerge else None
            rss: dict[str, int] = {}
            for r in range(args.rounds):
                results.setdefault("raw1", []).append(smtp_raw.one_connection(port, messages))
                results.setdefault("raw8", []).append(smtp_raw.threaded(port, messages, 8))
                fast = smtp_raw.FastDataSMTP
                results.setdefault("fast1", []).append(smtp_raw.one_connection(port, messages, smtp_class=fast))
                results.setdefault("fast8", []).append(smtp_raw.threaded(port, messages, 8, smtp_class=fast))
                for c in (1, 8):
                    res = digest_send(project, c)
                    results.setdefault(f"digest{c}", []).append(res["send_rate"])
                    results.setdefault(f"digest{c}_e2e", []).append(res["e2e_rate"])
                    rss[f"digest{c}"] = max(rss.get(f"digest{c}", 0), res["rss_kb"])
                print(f"  round {r + 1}: raw1 {results['raw1'][-1]:,.0f}/s raw8 {results['raw8'][-1]:,.0f}/s "
                      f"fast-DATA raw1 {results['fast1'][-1]:,.0f}/s raw8 {results['fast8'][-1]:,.0f}/s "
                      f"digest c1 {results['digest1'][-1]:,.0f}/s (e2e {results['digest1_e2e'][-1]:,.0f}) "
                      f"c8 {results['digest8'][-1]:,.0f}/s (e2e {results['digest8_e2e'][-1]:,.0f}) "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
            if mm_args:
                code, text, wall, mm_rss = run_child([args.mailmerge_command, *mm_args],
                                                     work / "mailmerge", os.environ.copy())
                if code != 0:
                    raise RuntimeError(f"mailmerge failed ({code}): {text[-2000:]}")
                results["mailmerge"] = [args.mailmerge / wall]
                rss["mailmerge"] = mm_rss
            if args.api:
                api_rates = api_send(project, args.api, args.rounds)
                results.update(api_rates)
            if args.big:
                write_list(project / "list.csv", args.big)
                res = digest_send(project, 8, ["--limit", str(args.subscribers)])
                rss[f"digest8 list of {args.big:,}"] = res["rss_kb"]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"\n{args.subscribers:,} subscribers, {args.rounds} rounds, medians (messages/s):")
    rows = [
        ("raw smtplib, 1 connection (same bytes, pre-built)", "raw1", None),
        ("raw smtplib, 8 connections in threads", "raw8", None),
        ("raw smtplib + digest's dot_stuff, 1 connection", "fast1", None),
        ("raw smtplib + digest's dot_stuff, 8 connections", "fast8", None),
        ("digest send --connections 1 (send phase)", "digest1", ("raw1", 0.5)),
        ("digest send --connections 1 (end to end)", "digest1_e2e", ("raw1", 0.5)),
        ("digest send --connections 8 (send phase)", "digest8", ("raw8", 0.8)),
        ("digest send --connections 8 (end to end)", "digest8_e2e", ("raw8", 0.8)),
    ]
    if "api" in med:
        rows.append((f"digest send --transport postmark, local fake API ({args.api:,} readers, send phase)",
                     "api", None))
        rows.append(("  Postmark batch calls per second", "api_calls", None))
    if "mailmerge" in med:
        rows.append((f"mailmerge 2.3.0 ({args.mailmerge} messages, 1 round)", "mailmerge", None))
    for label, key, target in rows:
        ratio = ""
        if target:
            base, goal = target
            ratio = f"{med[key] / med[base]:.2f}× {base} (target ≥ {goal}×)"
        print(f"  {label:52} {med[key]:8,.0f}   {ratio}")
    print(f"  against the raw loops with digest's dot_stuff (the same client-side speed-up): "
          f"--connections 1 {med['digest1_e2e'] / med['fast1']:.2f}×, "
          f"--connections 8 {med['digest8_e2e'] / med['fast8']:.2f}× end to end")
    if "mailmerge" in med:
        print(f"  digest --connections 1 vs mailmerge: {med['digest1_e2e'] / med['mailmerge']:.1f}× end to end, "
              f"--connections 8: {med['digest8_e2e'] / med['mailmerge']:.1f}× (target ≥ 10×)")
    print("peak memory (ru_maxrss of the child):")
    for k, v in rss.items():
        print(f"  {k:40} {v / 1024:8.0f} MB")


if __name__ == "__main__":
    main()
