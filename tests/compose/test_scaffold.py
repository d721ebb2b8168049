"""`digest init`: a new newsletter that works at once, documents its settings, and never overwrites a file."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.compose.scaffold import init_project
from digest.config import load_settings, toml_name
from digest.errors import ConfigError
from digest.sections import SECTIONS
from digest.transports import settings_classes

TODAY = dt.date(2027, 3, 4)


@pytest.fixture
def clean_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith("DIGEST_"):
            monkeypatch.delenv(key, raising=False)


def test_init_writes_a_project_whose_first_issue_builds_and_dry_runs(tmp_path, monkeypatch, clean_env):
    folder = tmp_path / "news"
    result = CliRunner().invoke(cli, ["init", str(folder), "--name", "Het Buurtnieuws",
                                      "--from", "Buurtnieuws <nieuws@buurt.example>"])
    assert result.exit_code == 0, result.output
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    month = dt.date.today().strftime("%Y-%m")
    assert names == [".gitignore", "digest.toml", f"issues/{month}-our-first-issue.yaml", "subscribers.csv",
                     "templates/newsletter.mjml.j2", "templates/newsletter.txt.j2",
                     "templates/partials/footer.mjml.j2", "templates/partials/intro.mjml.j2",
                     "templates/partials/masthead.mjml.j2", "templates/partials/section.mjml.j2"]
    slug = f"{month}-our-first-issue"
    assert f"Next: cd {folder} && digest preview {slug}" in result.output

    monkeypatch.chdir(folder)
    built = CliRunner().invoke(cli, ["build", slug])
    assert built.exit_code == 0, built.output
    html = (folder / "out" / slug / "index.html").read_text(encoding="utf-8")
    assert "Het Buurtnieuws" in html and "Our first issue" in html
    dry = CliRunner().invoke(cli, ["send", slug])
    assert dry.exit_code == 0, dry.output
    assert "audience     2 recipients" in dry.output and "Dry run: nothing was sent." in dry.output
    check = CliRunner().invoke(cli, ["subscribers", "check"])
    assert check.exit_code == 0 and "  valid        2\n" in check.output


def test_the_settings_file_lists_every_setting_and_loads_to_what_it_says(tmp_path, clean_env):
    init_project(tmp_path, name="Het Buurtnieuws", from_addr="Buurtnieuws <nieuws@buurt.example>", today=TODAY)
    text = (tmp_path / "digest.toml").read_text(encoding="utf-8")
    for section, cls in [*SECTIONS.items(), *settings_classes().items()]:
        assert f"[{section}]" in text, section
        for f in dataclasses.fields(cls):
            key = toml_name(f.name)
            assert f"\n{key} = " in text or f"\n# {key} = " in text, f"[{section}] {key} is not in digest.toml"
    settings = load_settings(tmp_path / "digest.toml", env={})
    assert settings.newsletter.name == "Het Buurtnieuws"
    assert settings.newsletter.from_ == "Buurtnieuws <nieuws@buurt.example>"
    assert settings.paths.subscribers == "subscribers.csv"
    # Commented-out lines show the defaults: the file loads to the built-in values for them.
    assert settings.send == type(settings.send)(transport="outbox")
    assert settings.colors == type(settings.colors)()
    assert settings.transports == {}  # transport sections are all commented out


def test_uncommenting_a_default_line_gives_the_same_settings(tmp_path, clean_env):
    init_project(tmp_path, today=TODAY)
    toml = tmp_path / "digest.toml"
    before = load_settings(toml, env={})
    lines = toml.read_text(encoding="utf-8").splitlines()
    # Uncomment every default line of the non-transport sections (keys with a value shown).
    out, section = [], None
    for line in lines:
        if line.startswith("[") or line.startswith("# ["):
            section = line.strip("# []")
        if (section in SECTIONS and line.startswith("# ") and " = " in line
                and "(not set)" not in line and line[2:3].isalpha() and line[2:].split(" = ")[0].isidentifier()):
            line = line[2:]
        out.append(line)
    toml.write_text("\n".join(out) + "\n", encoding="utf-8")
    after = load_settings(toml, env={})
    for name in SECTIONS:
        assert getattr(after, name) == getattr(before, name), name


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path, clean_env):
    (tmp_path / "issues").mkdir()
    (tmp_path / "subscribers.csv").write_text("email\nme@example.org\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        init_project(tmp_path, today=TODAY)
    assert str(tmp_path / "subscribers.csv") in info.value.message
    assert "never overwrites a file, and wrote nothing" in info.value.message
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["issues", "subscribers.csv"]
    assert (tmp_path / "subscribers.csv").read_text(encoding="utf-8") == "email\nme@example.org\n"


def test_init_from_the_command_line_in_a_folder_with_a_digest_toml_fails_cleanly(tmp_path):
    (tmp_path / "digest.toml").write_text("[newsletter]\nname = 'Mine'\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "digest", "init", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "digest.toml already exists: digest init never overwrites a file" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (tmp_path / "digest.toml").read_text(encoding="utf-8") == "[newsletter]\nname = 'Mine'\n"


def test_the_starter_templates_are_the_example_projects_templates():
    from importlib import resources

    repo_templates = Path(__file__).resolve().parents[2] / "templates"
    starter = resources.files("digest.starter").joinpath("templates")
    for path in repo_templates.rglob("*.j2"):
        rel = path.relative_to(repo_templates)
        assert starter.joinpath(*rel.parts).read_bytes() == path.read_bytes(), rel
