"""The documentation: generated reference pages up to date, every command, option and setting described,
every page in the navigation, a strict MkDocs build, and README.md naming only commands that exist."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
README = REPO / "README.md"
REGENERATE = "run `python docs/gen_reference.py` and commit docs/reference/"


def _generator():
    """docs/gen_reference.py as a module (docs/ is not a package)."""
    spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "gen_reference.py")
    module = importlib.util.module_from_spec(spec)
    dont_write = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # no __pycache__ inside docs/
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = dont_write
    return module


gen = _generator()


# --- (1) the generated reference pages are up to date ---------------------------------------------

@pytest.mark.parametrize("page, make", [("cli.md", "cli_reference"), ("settings.md", "settings_reference"),
                                        ("checks.md", "checks_reference")])
def test_generated_reference_is_up_to_date(page, make):
    committed = (DOCS / "reference" / page).read_text(encoding="utf-8")
    assert committed == getattr(gen, make)(), f"docs/reference/{page} is out of date: {REGENERATE}"


# --- (2) everything is described -----------------------------------------------------------------

def test_every_command_and_option_has_help():
    missing = []
    for ctx, command in gen.all_commands():
        if not (command.help or "").strip():
            missing.append(ctx.command_path)
        for param in command.params:
            if isinstance(param, click.Option) and not (param.help or "").strip():
                missing.append(f"{ctx.command_path} {param.opts[0]}")
    assert not missing, f"no help text (add help=… to the click option or a docstring): {missing}"


def test_every_setting_has_a_description():
    missing = []
    for section, cls, _transport in gen.settings_sections():
        for field in dataclasses.fields(cls):
            if not str(field.metadata.get("doc", "")).strip():
                missing.append(f"[{section}] {field.name} ({cls.__module__}.{cls.__name__})")
    assert not missing, f"settings without a description (use setting(default, \"…\")): {missing}"


def test_every_transport_section_is_in_the_settings_reference():
    from digest.sections import TRANSPORT_SECTIONS

    documented = [name for name, _cls, transport in gen.settings_sections() if transport]
    assert documented == list(TRANSPORT_SECTIONS), \
        "every transport section needs a settings dataclass (the transport's settings_class) to be documented"
    assert all(dataclasses.is_dataclass(cls) for _name, cls, _t in gen.settings_sections())


# --- (3) every page is in the navigation ---------------------------------------------------------

def _nav_pages(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [p for item in node for p in _nav_pages(item)]
    if isinstance(node, dict):
        return [p for value in node.values() for p in _nav_pages(value)]
    return []


def test_every_page_is_in_the_nav():
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    nav = [p for p in _nav_pages(config["nav"]) if not re.match(r"[a-z]+://", p)]
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert sorted(set(pages) - set(nav)) == [], "pages missing from the nav in mkdocs.yml"
    assert sorted(set(nav) - set(pages)) == [], "nav entries in mkdocs.yml without a page"
    assert len(nav) == len(set(nav)), "a page appears twice in the nav"


# --- (4) the site builds without a warning -------------------------------------------------------

@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(REPO / "mkdocs.yml"),
         "--site-dir", str(tmp_path / "site")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "reference" / "cli" / "index.html").is_file()


# --- (5) README.md names only commands that exist, and links only to pages that exist -------------

_COMMAND = r"(?:\S*/)?digest((?: +[a-z][a-z0-9-]*){1,2})"  # digest send …, .venv/bin/digest send …


def _commands_named(markdown: str) -> set[tuple[str, ...]]:
    """('send',), ('subscribers', 'check'), … for every `digest WORD [WORD]` the text gives as a command.

    A command is an inline code span that starts with it, or, in a fenced code block, a line (after an
    optional `$ ` prompt) or a part after `&&`, `;` or `|` that starts with it; comments are left out.
    """
    found = set()
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", markdown, flags=re.M | re.S)
    prose = re.sub(r"^```[^\n]*\n.*?^```", "", markdown, flags=re.M | re.S)
    starts = [span for _, span in re.findall(r"(``?)(.+?)\1", prose)]
    for block in blocks:
        for line in block.splitlines():
            line = re.sub(r"(^|\s)#.*", "", line)  # a shell comment
            line = re.sub(r"^\$\s+", "", line.strip())
            starts += [part.strip() for part in re.split(r"&&|;|\|", line)]
    for text in starts:
        m = re.match(_COMMAND, text.strip())
        if m:
            found.add(tuple(m.group(1).split()))
    return found


def test_readme_commands_exist():
    from digest.cli import cli

    root = click.Context(cli, info_name="digest")
    unknown = []
    named = _commands_named(README.read_text(encoding="utf-8"))
    assert ("send",) in {words[:1] for words in named}, "the README's commands were not found at all"
    for words in sorted(named):
        command = cli.get_command(root, words[0])
        if command is None:
            unknown.append(f"digest {words[0]}")
        elif isinstance(command, click.Group) and len(words) > 1:
            sub = click.Context(command, info_name=words[0], parent=root)
            if command.get_command(sub, words[1]) is None:
                unknown.append(f"digest {words[0]} {words[1]}")
    assert not unknown, f"README.md names commands that do not exist: {unknown}"


def test_readme_links_resolve():
    text = README.read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    broken = [link for link in links
              if not re.match(r"[a-z]+:", link) and not link.startswith("#")
              and not (REPO / link.split("#")[0]).exists()]
    assert not broken, f"README.md links to files that do not exist: {broken}"
