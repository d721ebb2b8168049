"""`digest new`: a new issue file with today's date and every field shown once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from digest.errors import IssueError
from digest.text import slugify

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings

TEMPLATE = '''# A new issue of {newsletter}. The fields are described in the README ("Issue files").
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


def new_issue(settings: "Settings", title: str, *, today: dt.date | None = None) -> Path:
    """Write issues/<yyyy-mm>-<slug>.yaml for TITLE; never overwrites an existing file."""
    if not title.strip():
        raise IssueError("the title is empty.", 'run digest new "Title of the issue"')
    today = today or dt.date.today()
    folder = settings.path("issues")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{today:%Y-%m}-{slugify(title)}.yaml"
    if path.exists():
        raise IssueError(f"{path} already exists.", "choose another title, or edit that file")
    title_q = title.strip().replace("\\", "\\\\").replace('"', '\\"')
    path.write_text(TEMPLATE.format(newsletter=settings.newsletter.name, title_q=title_q,
                                     date=today.isoformat()), encoding="utf-8")
    return path
