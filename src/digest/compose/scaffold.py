"""Starting things: `digest new` (an issue file with every field shown once) and `digest init` (a newsletter)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from digest.config import toml_name
from digest.errors import ConfigError, IssueError
from digest.sections import default_of, toml_literal
from digest.text import slugify

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings

TEMPLATE = '''# A new issue of {newsletter}. Every field is described in the docs: guide/issue-files.md.
subject: "{title_q}"
preheader: "One line that shows after the subject in the inbox."
title: "{title_q}"
date: {date}
# send_at: {date}T09:00:00+01:00   # when `digest send --due` may send it (time zone required)
# not_after: {date}T18:00:00+01:00 # never send after this
# audience: [members]              # only subscribers with one of these tags
# header_image:
#   src: images/header.png         # relative to this file, or https://…
#   alt: What the image shows
intro: |
  Dear {{{{ first_name }}}},

  Write the introduction here. **Markdown** works: *emphasis*, [links](https://example.org), lists.
sections:
  - title: First highlight
    body: |
      A paragraph or two about it.
    # image:
    #   src: images/first.jpg
    #   alt: What the image shows
    cta:
      label: Read more
      url: https://example.org/
  - title: Second highlight
    body: |
      1. Numbered lists
      2. work too.
outro: |
  See you next time!
'''


def issue_text(newsletter: str, title: str, today: dt.date) -> str:
    """The text of a new issue file for TITLE, dated `today`."""
    title_q = title.strip().replace("\\", "\\\\").replace('"', '\\"')
    return TEMPLATE.format(newsletter=newsletter, title_q=title_q, date=today.isoformat())


def issue_filename(title: str, today: dt.date) -> str:
    """'<yyyy-mm>-<slug>.yaml': issues sort by month in the folder, and the slug names the issue."""
    return f"{today:%Y-%m}-{slugify(title)}.yaml"


def new_issue(settings: "Settings", title: str, *, today: dt.date | None = None) -> Path:
    """Write issues/<yyyy-mm>-<slug>.yaml for TITLE; never overwrites an existing file."""
    if not title.strip():
        raise IssueError("the title is empty.", 'run digest new "Title of the issue"')
    today = today or dt.date.today()
    folder = settings.path("issues")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / issue_filename(title, today)
    if path.exists():
        raise IssueError(f"{path} already exists.", "choose another title, or edit that file")
    path.write_text(issue_text(settings.newsletter.name, title, today), encoding="utf-8")
    return path


# --- digest init ----------------------------------------------------------------------------------

STARTER_LIST = """email,first_name,last_name,organisation,tags
ann.example@example.org,Ann,Example,Example Organisation,members
bo.example@example.org,Bo,Example,,members;partners
"""
GITIGNORE = "# digest's output and its state (the ledger holds subscriber data)\nout/\n.digest/\n"
FIRST_TITLE = "Our first issue"


def _settings_text(name: str, from_addr: str) -> str:
    """digest.toml for a new newsletter: what a team must change set, every other setting commented."""
    from digest.sections import SECTIONS
    from digest.transports import settings_classes

    values = {
        ("newsletter", "name"): name,
        ("newsletter", "from"): from_addr,
        ("newsletter", "postal_address"): "Your Organisation, Street 1, 1000 AA City, Country",
        ("newsletter", "website"): "https://example.org",
        ("newsletter", "assets_url"): "https://example.org/newsletter/",
        ("unsubscribe", "url"): "https://example.org/newsletter/unsubscribe?token={token}",
        ("unsubscribe", "web_version_url"): "https://example.org/newsletter/{slug}/",
        ("paths", "subscribers"): "subscribers.csv",
        ("send", "transport"): "outbox",
    }
    sections = [(n, cls, False) for n, cls in SECTIONS.items()]
    sections += [(n, cls, True) for n, cls in settings_classes().items()]
    head = (f"# Settings for {name}, written by `digest init`. Every setting is listed with what it does; a\n"
            "# commented-out line shows the built-in default. Secrets (the unsubscribe signing keys, the SMTP\n"
            "# password, API tokens) never go here: they come from environment variables.\n"
            "# digest's documentation describes each one too (Reference → Settings).\n\n")
    return head + settings_toml(sections, values)


def starter_files(name: str, from_addr: str, today: dt.date) -> dict[str, bytes]:
    """Every file of a new newsletter, by path relative to its folder."""
    from importlib import resources

    files = {
        "digest.toml": _settings_text(name, from_addr).encode("utf-8"),
        f"issues/{issue_filename(FIRST_TITLE, today)}": issue_text(name, FIRST_TITLE, today).encode("utf-8"),
        "subscribers.csv": STARTER_LIST.encode("utf-8"),
        ".gitignore": GITIGNORE.encode("utf-8"),
    }
    templates = resources.files("digest.starter").joinpath("templates")
    for entry in _walk(templates, "templates"):
        files[entry[0]] = entry[1]
    return files


def _walk(folder, prefix: str):
    for item in sorted(folder.iterdir(), key=lambda i: i.name):
        if item.is_dir():
            yield from _walk(item, f"{prefix}/{item.name}")
        elif item.name.endswith(".j2"):
            yield f"{prefix}/{item.name}", item.read_bytes()


def init_project(folder: Path, *, name: str = "My Newsletter", from_addr: str | None = None,
                 today: dt.date | None = None) -> list[Path]:
    """Write a new newsletter into `folder`: digest.toml, templates/, issues/ with a first issue,
    subscribers.csv. Refuses (writing nothing) when any of those files exists already."""
    if not name.strip():
        raise ConfigError("the newsletter's name is empty.", 'run digest init --name "Our Newsletter"')
    from_addr = from_addr or f"{name.strip()} <newsletter@example.org>"
    files = starter_files(name.strip(), from_addr, today or dt.date.today())
    existing = [rel for rel in files if (folder / rel).exists()]
    if existing:
        shown = ", ".join(str(folder / rel) for rel in existing[:3]) + (" …" if len(existing) > 3 else "")
        raise ConfigError(f"{shown} already exist{'s' if len(existing) == 1 else ''}: digest init never "
                          "overwrites a file, and wrote nothing.",
                          "run it in an empty folder (digest init NEW-FOLDER), or move those files away")
    written: list[Path] = []
    try:
        for rel, data in files.items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "xb") as fh:  # x: never replace a file that appeared meanwhile
                fh.write(data)
            written.append(path)
    except OSError as exc:
        for path in written:
            path.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {exc.filename or folder}: {exc.strerror}.",
                          "check the folder's permissions and free space; nothing was left behind") from exc
    return written


# --- writing a settings file --------------------------------------------------------------------

def settings_toml(sections: list[tuple[str, type, bool]], values: Mapping[tuple[str, str], Any]) -> str:
    """digest.toml text listing every setting of `sections` with its description and default.

    `sections` holds (name, dataclass, whole section commented out); `values` maps
    (section, key) to a value written as an active line. Every other key is a commented-out line
    showing its default, so the file documents itself and loads to the same settings.
    """
    out: list[str] = []
    for name, cls, commented in sections:
        prefix = "# " if commented else ""
        out += ["", f"{prefix}[{name}]"]
        for f in dataclasses.fields(cls):
            key = toml_name(f.name)
            doc = f.metadata.get("doc", "")
            out += [f"# {line}" for line in textwrap.wrap(doc, 96)]
            if (name, key) in values:
                out.append(f"{prefix}{key} = {toml_literal(values[(name, key)])}")
                continue
            default = default_of(f)
            out.append(f"# {key} = {toml_literal(default)}" if default is not None else f"# {key} =   (not set)")
    return "\n".join(out).lstrip("\n") + "\n"
