"""What every command shares: the settings (loaded once, on first use) and how paths are shown."""

from __future__ import annotations

from pathlib import Path

import click

from digest.config import load_settings


class AppContext:
    """What every command shares: where the settings are and whether to show tracebacks."""

    def __init__(self, config: str | None, debug: bool):
        self.config = config
        self.debug = debug
        self._settings = None

    @property
    def settings(self):
        """The loaded Settings (loaded on first use)."""
        if self._settings is None:
            self._settings = load_settings(self.config)
        return self._settings


pass_app = click.make_pass_decorator(AppContext)


def display(path: Path | str) -> str:
    """A path relative to the current folder when it is below it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
