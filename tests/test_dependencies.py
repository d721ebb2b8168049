"""The dependency floors in pyproject.toml stay past the releases with known security fixes."""

from __future__ import annotations

import re
import tomllib

from tests.helpers.project import REPO

# package → the first release without the known advisories: Jinja2's sandbox escapes (CVE-2024-56326,
# CVE-2024-56201, CVE-2025-27516), requests' session that kept verify=False (CVE-2024-35195) and its
# .netrc credential leak (CVE-2024-47081).
FLOORS = {"jinja2": (3, 1, 6), "requests": (2, 32, 4)}


def _floor(requirement: str) -> tuple[int, ...] | None:
    m = re.search(r">=\s*([0-9][0-9.]*)", requirement)
    return tuple(int(p) for p in m.group(1).split(".")) if m else None


def test_security_floors_are_raised_past_known_cves():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    by_name = {re.split(r"[<>=!~ \[;]", d, maxsplit=1)[0].lower(): d for d in deps}
    for name, floor in FLOORS.items():
        found = _floor(by_name[name])
        assert found is not None and found + (0,) * (3 - len(found)) >= floor, f"{by_name[name]} (needs >= {floor})"
