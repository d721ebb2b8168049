"""The archive's index page and its Atom feed (feed.xml, made with feedgen), newest issue first."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import jinja2

from digest.clock import parse_stamp

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings
    from digest.publish.layout import Layout

FEED_FILE = "feed.xml"
_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.S | re.I)


@dataclass
class Entry:
    """One published issue, as the index and the feed list it."""

    slug: str
    url: str           # the web version's absolute URL
    title: str         # the subject, merge fields at their defaults
    summary: str       # the preheader
    when: str          # ISO date or stamp: when it went out (or its date)
    html: str          # the web version page
    fingerprint: str
    rendered: bool = True

    @property
    def moment(self) -> datetime:
        """`when` as an aware time (a bare date is midnight UTC)."""
        stamp = parse_stamp(self.when) if "T" in self.when else None
        return stamp or datetime.fromisoformat(self.when).replace(tzinfo=timezone.utc)


def feed_xml(settings: "Settings", layout: "Layout", entries: list[Entry]) -> bytes:
    """The Atom feed: every entry with its full web version as content."""
    from feedgen.feed import FeedGenerator

    nl = settings.newsletter
    fg = FeedGenerator()
    fg.id(layout.root_url)
    fg.title(nl.name)
    fg.author({"name": nl.name})
    fg.link(href=layout.root_url, rel="alternate")
    fg.link(href=layout.root_url + FEED_FILE, rel="self")
    fg.language(nl.language)
    fg.subtitle(nl.why or nl.name)
    # The newest issue's time, not "now": publishing twice with nothing new leaves the feed unchanged.
    fg.updated(entries[0].moment if entries else datetime(1970, 1, 1, tzinfo=timezone.utc))
    for entry in reversed(entries):  # feedgen puts each new entry first: add the oldest first
        fe = fg.add_entry()
        fe.id(entry.url)
        fe.title(entry.title)
        fe.link(href=entry.url, rel="alternate")
        fe.published(entry.moment)
        fe.updated(entry.moment)
        if entry.summary:
            fe.summary(entry.summary)
        body = _BODY.search(entry.html)
        fe.content(body.group(1).strip() if body else entry.html, type="html")
    return fg.atom_str(pretty=True)


_INDEX = jinja2.Environment(autoescape=True).from_string("""<!doctype html>
<html lang="{{ nl.language }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ nl.name }}</title>
<link rel="alternate" type="application/atom+xml" title="{{ nl.name }}" href="{{ feed }}">
<style>
  body { margin: 0; background: {{ c.background }}; color: {{ c.text }};
         font: 17px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
  main { max-width: 40rem; margin: 2rem auto; padding: 2rem; background: {{ c.card }}; border-radius: 8px;
         border-top: 6px solid {{ c.accent }}; }
  h1 { color: {{ c.brand }}; margin: 0 0 1.5rem; }
  ol { list-style: none; padding: 0; margin: 0; }
  li { margin: 0 0 1.25rem; }
  a { color: {{ c.link }}; font-weight: 600; }
  time, .summary { display: block; font-size: .9rem; opacity: .8; }
</style>
</head>
<body>
<main>
<h1>{{ nl.name }}</h1>
{% if entries %}<ol reversed>
{% for e in entries %}<li><time datetime="{{ e.moment.date().isoformat() }}">{{ e.moment.date().isoformat() }}</time>
<a href="{{ e.link }}">{{ e.title }}</a>{% if e.summary %}<span class="summary">{{ e.summary }}</span>{% endif %}</li>
{% endfor %}</ol>{% else %}<p>No issues yet.</p>{% endif %}
<p><a href="{{ feed }}">Atom feed</a> · <a href="{{ nl.website }}">{{ nl.website }}</a></p>
</main>
</body>
</html>
""")


@dataclass
class _Listed:
    link: str
    title: str
    summary: str
    moment: datetime


def index_html(settings: "Settings", layout: "Layout", entries: list[Entry]) -> str:
    """The archive's front page: every issue, newest first, linked relative to the index."""
    listed = [_Listed(link=e.url[len(layout.root_url):], title=e.title, summary=e.summary, moment=e.moment)
              for e in entries]
    return _INDEX.render(nl=settings.newsletter, c=settings.colors, entries=listed, feed=FEED_FILE)
