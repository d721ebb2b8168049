"""Merge values inside a link of the final HTML: percent-encoded, and never a javascript: (or any non-web) link."""

from __future__ import annotations

import csv
import re

import pytest

from digest.audience.subscribers import read_subscribers
from digest.audience.tokens import KeyRing
from digest.compose.issue import load_issue
from digest.compose.render import render_issue
from digest.delivery.personalize import Personalizer
from digest.errors import MergeError
from tests.helpers.project import EXAMPLE_ISSUE

LINKS = ("  Your page: [here](https://example.org/p?u={{ email }}&n={{ first_name }}), your site:"
         " [there]({{ website }}), or [write](mailto:{{ email }}).\n\n")


@pytest.fixture
def personalizer(project, settings):
    issue = project / "issues" / f"{EXAMPLE_ISSUE}.yaml"
    issue.write_text(issue.read_text(encoding="utf-8").replace("intro: |\n", "intro: |\n" + LINKS, 1),
                     encoding="utf-8")
    rendered = render_issue(load_issue(issue), settings)
    return Personalizer(rendered, settings, KeyRing.from_env("K", {}, allow_dev_key=True), source="list.csv")


def reader(tmp_path, first_name: str, website: str):
    path = tmp_path / "list.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["email", "first_name", "website"], ["ann@example.org", first_name, website]])
    return next(read_subscribers(path))


def hrefs(html: str) -> list[str]:
    return re.findall(r'href="([^"]*)"', html)


def test_values_inside_a_link_are_percent_encoded(personalizer, tmp_path):
    sub = reader(tmp_path, 'Ann & "Bob"\nBcc: x@evil.test&admin=1', "https://ann.example/my page?x=1&y=<2>")
    html = personalizer.message_for(sub, 0).html
    links = hrefs(html)
    assert ("https://example.org/p?u=ann@example.org&amp;n=Ann%20%26%20%22Bob%22%0ABcc%3A%20x@evil.test"
            "%26admin%3D1") in links
    assert "https://ann.example/my%20page?x=1&amp;y=%3C2%3E" in links
    assert "mailto:ann@example.org" in links
    assert not [h for h in links if "\n" in h or " " in h or "<" in h]
    # outside links the value is only HTML-escaped, as before
    assert "This email was sent to ann@example.org" in re.sub(r"<[^>]+>", "", html)
    unsubscribe = [h for h in links if "unsubscribe?token=" in h]
    assert unsubscribe and all(h.startswith("https://example.org/newsletter/unsubscribe?token=dev.") for h in unsubscribe)


@pytest.mark.parametrize("website", ["javascript:alert(document.cookie)", " JavaScript:alert(1)", "data:text/html,x",
                                     "vbscript:x", "//evil.example/x", "file:///etc/passwd"])
def test_a_value_that_begins_a_link_must_be_a_web_or_mailto_url(personalizer, tmp_path, website):
    sub = reader(tmp_path, "Ann", website)
    with pytest.raises(MergeError) as info:
        personalizer.check(sub)  # the audience check: before anything is sent
    assert "list.csv:2: ann@example.org: the merge field 'website' begins a link" in str(info.value)
    with pytest.raises(MergeError):
        personalizer.message_for(sub, 0)


def test_an_empty_value_that_begins_a_link_leaves_it_empty(personalizer, tmp_path):
    sub = reader(tmp_path, "Ann", "")
    personalizer.defaults = {**personalizer.defaults, "website": ""}
    assert 'href=""' in personalizer.message_for(sub, 0).html


def test_the_text_part_keeps_the_values_as_written(personalizer, tmp_path):
    sub = reader(tmp_path, "Ann & Bob", "https://ann.example/")
    text = personalizer.message_for(sub, 0).text
    assert "https://example.org/p?u=ann@example.org&n=Ann & Bob" in " ".join(text.split())
