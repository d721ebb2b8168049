"""`digest dkim keygen` and `digest dkim record`: a DKIM key and the DNS TXT record that publishes it."""

from __future__ import annotations

from pathlib import Path

import click

from digest.cli.app import AppContext, display, pass_app


@click.group()
def dkim() -> None:
    """DKIM keys: make one, and print the DNS record to publish."""


def _print_record(key, domain: str) -> None:
    from digest.delivery.dkimkeys import zone_line

    click.echo(f"Publish this TXT record at {key.selector}._domainkey.{domain}:\n")
    click.echo(f"  {key.record()}\n")
    click.echo("As a zone-file line (DNS strings hold 255 bytes; most DNS consoles split it for you):\n")
    click.echo(f"  {zone_line(key.selector, domain, key.record())}")


@dkim.command()
@click.option("--selector", required=True, help="The key's selector, e.g. digest2026 (a new one for every new key).")
@click.option("--algorithm", type=click.Choice(["rsa-sha256", "ed25519-sha256"]), default="rsa-sha256",
              show_default=True, help="Key type (every receiver checks RSA; many also check ed25519).")
@click.option("--bits", type=int, default=2048, show_default=True, help="RSA key size.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the private key (created 0600; never overwritten).")
@pass_app
def keygen(app: AppContext, selector: str, algorithm: str, bits: int, out: Path) -> None:
    """Make a new DKIM private key in --out and print the DNS TXT record to publish for it."""
    from digest.delivery.dkim import signing_domain
    from digest.delivery.dkimkeys import new_key_file

    domain = signing_domain(app.settings)
    key = new_key_file(out, algorithm, selector, bits)
    click.echo(f"Wrote {algorithm} key {display(out)} (mode 600). In digest.toml:\n")
    click.echo(f'  [dkim]\n  selector = "{selector}"\n  algorithm = "{algorithm}"\n  key_file = "{out}"\n')
    _print_record(key, domain)
    click.echo(f"\nThen check with: digest check ISSUE --dns")


@dkim.command()
@pass_app
def record(app: AppContext) -> None:
    """Print the DNS TXT record(s) for the key(s) [dkim] configures."""
    from digest.delivery.dkim import signing_domain
    from digest.delivery.dkimkeys import keys_for_settings

    keys = keys_for_settings(app.settings)
    if not keys:
        raise click.UsageError("[dkim] selector is not set in digest.toml: there is no key to publish.")
    domain = signing_domain(app.settings)
    for key in keys:
        _print_record(key, domain)
