"""Fixtures `project` and `settings`: a throw-away copy of the example project, so tests never edit the
repo's files. Registered as a plugin in tests/conftest.py; REPO, DATA and EXAMPLE_ISSUE are plain constants."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"  # files the tests read (the seed newsletter text)
EXAMPLE_ISSUE = "2023-12-learning-innovation-highlights"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the example project (digest.toml, issues/, templates/, list) as the current folder."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO / "digest.toml", root / "digest.toml")
    shutil.copytree(REPO / "issues", root / "issues")
    shutil.copytree(REPO / "templates", root / "templates")
    if (REPO / "subscribers.example.csv").exists():
        shutil.copy(REPO / "subscribers.example.csv", root / "subscribers.example.csv")
    monkeypatch.chdir(root)
    monkeypatch.delenv("DIGEST_CONFIG", raising=False)
    for key in list(os.environ):
        if key.startswith("DIGEST_"):
            monkeypatch.delenv(key, raising=False)
    return root


@pytest.fixture
def settings(project: Path):
    """Settings loaded from the copied project."""
    from digest.config import load_settings

    return load_settings(project / "digest.toml")
