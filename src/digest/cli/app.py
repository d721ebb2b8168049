"""What every command shares: the settings (loaded once, on first use) and how paths are shown."""

from __future__ import annotations

from pathlib import Path

import click

from digest.config import CONFIG_FILENAME, load_settings
from digest.errors import ConfigError


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

    @property
    def project_settings(self):
        """The settings of the newsletter this folder belongs to; a ConfigError outside any.

        For commands that write into the project (a new issue, the state folder): outside one they
        would silently start a second, half project in whatever folder the shell is in.
        """
        settings = self.settings
        if settings.config_path is None:
            raise ConfigError(f"no {CONFIG_FILENAME} in {Path.cwd()} or any folder above it: this is not a "
                              "newsletter's folder.", "start one here with `digest init`, or cd into one "
                              "(or name its settings file with --config FILE)")
        return settings


pass_app = click.make_pass_decorator(AppContext)


def display(path: Path | str) -> str:
    """A path relative to the current folder when it is below it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
