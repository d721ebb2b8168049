"""The `digest` command line: one module per command group; each command parses its options, calls
the library, and formats the result. Library code raises DigestErrors; `main` reports them.

Heavy modules (mjml, premailer, requests, sqlite work) are imported inside commands so that
`digest --help` starts fast.
"""

from __future__ import annotations

import sys

import click

from digest import __version__
from digest.cli.app import AppContext
from digest.cli.bounces import bounces
from digest.cli.check import check
from digest.cli.content import build, init, new, preview
from digest.cli.dkim import dkim
from digest.cli.schedule import schedule
from digest.cli.send import retry, send
from digest.cli.status import status
from digest.cli.subscribers import subscribers
from digest.cli.suppress import suppress, unsubscribe
from digest.cli.web import publish, serve
from digest.errors import DigestError
from digest.text import terminal_safe


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="digest")
@click.option("--config", "config", type=click.Path(dir_okay=False), envvar="DIGEST_CONFIG",
              help="Settings file (default: the nearest digest.toml).")
@click.option("--debug", is_flag=True, help="Show the full traceback when something fails.")
@click.pass_context
def cli(ctx: click.Context, config: str | None, debug: bool) -> None:
    """digest — write a newsletter issue as a YAML file, preview it, send it."""
    ctx.obj = AppContext(config, debug)


for command in (init, new, build, check, preview, subscribers, send, retry, schedule, status, unsubscribe, suppress,
                dkim, serve, publish, bounces):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the CLI and turn DigestErrors into short messages."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        # Without standalone mode click *returns* the code of a raised click.exceptions.Exit.
        code = cli.main(args=argv, prog_name="digest", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
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
        # Messages quote data (a list's cells, a provider's reply, a name typed): shown, never obeyed.
        click.secho(f"Error: {terminal_safe(exc.message, multiline=True)}", fg="red", err=True)
        if exc.hint:
            click.echo(f"  → {terminal_safe(exc.hint, multiline=True)}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
