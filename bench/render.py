"""Benchmark: render the example issue in-process, and a whole `digest build` process.

Prints medians (and the spread) — figures, not a test. Run: .venv/bin/python bench/render.py [--rounds N]
Import cost counts too: `digest --help` is timed beside `python -c pass` as a baseline.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ISSUE = "2023-12-learning-innovation-highlights"


def timed(fn, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def fmt(samples: list[float]) -> str:
    med = statistics.median(samples)
    return f"median {med * 1000:8.1f} ms   (min {min(samples) * 1000:.1f}, max {max(samples) * 1000:.1f}, n={len(samples)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    sys.path.insert(0, str(REPO / "src"))
    from digest.config import load_settings
    from digest.compose.issue import load_issue
    from digest.compose.render import compile_mjml, inline_css, render_issue

    settings = load_settings(REPO / "digest.toml")
    issue = load_issue(REPO / "issues" / f"{ISSUE}.yaml")
    first = timed(lambda: render_issue(issue, settings), 1)[0]
    rendered = render_issue(issue, settings)
    whole = timed(lambda: render_issue(issue, settings), args.rounds)

    # Where the time goes: the MJML compile and the CSS inlining on their own.
    import jinja2  # noqa: F401  (already imported by render)
    from digest.compose import render as render_mod

    env = render_mod._environment(settings, settings.newsletter.assets_url)
    from markupsafe import Markup

    context = {"newsletter": settings.newsletter, "colors": settings.colors, "issue": issue,
               "sections": issue.sections, "subject": issue.subject, "preheader": issue.preheader,
               "subscriber": render_mod.SlotProxy(), "unsubscribe_url": Markup("u"), "web_version_url": Markup("w")}
    mjml_source = env.get_template("newsletter.mjml.j2").render(context)
    compiled = compile_mjml(mjml_source, settings, "newsletter.mjml.j2")
    jinja_t = timed(lambda: env.get_template("newsletter.mjml.j2").render(context), args.rounds)
    mjml_t = timed(lambda: compile_mjml(mjml_source, settings, "newsletter.mjml.j2"), args.rounds)
    css_t = timed(lambda: inline_css(compiled), args.rounds)

    digest_bin = shutil.which("digest", path=str(Path(sys.executable).parent)) or "digest"
    env_vars = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        build_t = timed(lambda: subprocess.run(
            [digest_bin, "--config", str(REPO / "digest.toml"), "build", ISSUE, "--out", tmp],
            check=True, capture_output=True, env=env_vars), max(5, args.rounds // 3))
    help_t = timed(lambda: subprocess.run([digest_bin, "--help"], check=True, capture_output=True),
                   max(5, args.rounds // 3))
    base_t = timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), max(5, args.rounds // 3))

    print(f"example issue: {len(issue.sections)} sections, HTML {rendered.html_bytes / 1024:.1f} KB, "
          f"text {len(rendered.text.raw) / 1024:.1f} KB")
    print(f"render_issue, first call (cold caches): {first * 1000:.1f} ms")
    print(f"render_issue, in-process          {fmt(whole)}")
    print(f"  Jinja → MJML source             {fmt(jinja_t)}")
    print(f"  mjml-python compile             {fmt(mjml_t)}")
    print(f"  premailer CSS inlining          {fmt(css_t)}")
    print(f"`digest build` whole process      {fmt(build_t)}   (renders twice: email + web version)")
    print(f"`digest --help` process           {fmt(help_t)}")
    print(f"`python -c pass` baseline         {fmt(base_t)}")
    print(f"`digest --help` / baseline        {statistics.median(help_t) / statistics.median(base_t):.2f}×")


if __name__ == "__main__":
    main()
