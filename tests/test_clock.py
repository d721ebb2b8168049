"""Times as people read them: how far away, in words."""

from __future__ import annotations

from datetime import timedelta

from digest.clock import humanize


def test_humanize_gives_the_two_largest_units():
    assert humanize(timedelta(days=2, hours=3, minutes=10)) == "in 2 days 3 h"
    assert humanize(timedelta(hours=3, minutes=10)) == "in 3 h 10 min"
    assert humanize(timedelta(minutes=45, seconds=59)) == "in 45 min"
    assert humanize(-timedelta(days=1, minutes=5)) == "1 day ago"
    assert humanize(-timedelta(hours=2, minutes=1)) == "2 h 1 min ago"
    assert humanize(timedelta(seconds=20)) == "in less than a minute"
