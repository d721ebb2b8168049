"""The `digest` command line: each command parses its options, calls one library function, reports.

Heavy modules (mjml, premailer, requests, sqlite work) are imported inside commands so that
`digest --help` starts fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import __version__
from .errors import DigestError


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
            from .config import load_settings

            self._settings = load_settings(self.config)
        return self._settings


pass_app = click.make_pass_decorator(AppContext)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="digest")
@click.option("--config", "config", type=click.Path(dir_okay=False), envvar="DIGEST_CONFIG",
              help="Settings file (default: the nearest digest.toml).")
@click.option("--debug", is_flag=True, help="Show the full traceback when something fails.")
@click.pass_context
def cli(ctx: click.Context, config: str | None, debug: bool) -> None:
    """digest — write a newsletter issue as a YAML file, preview it, send it."""
    ctx.obj = AppContext(config, debug)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the CLI and turn DigestErrors into short messages."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="digest", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except DigestError as exc:
        if debug:
            raise
        click.secho(f"Error: {exc.message}", fg="red", err=True)
        if exc.hint:
            click.echo(f"  → {exc.hint}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
