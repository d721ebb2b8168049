"""`digest serve` (the reader-facing web app) and `digest publish` (the static archive and its feed)."""

from __future__ import annotations

from pathlib import Path

import click

from digest.cli.app import AppContext, display, pass_app
from digest.web.server import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_THREADS


@click.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True,
              help="Address to listen on; keep 127.0.0.1 behind a TLS reverse proxy (Caddy, nginx).")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@click.option("--threads", default=DEFAULT_THREADS, show_default=True, type=click.IntRange(1, 256),
              help="Requests answered at the same time.")
@click.option("--archive", type=click.Path(file_okay=False, path_type=Path),
              help="Folder of the published archive to serve (default: where `digest publish` writes).")
@pass_app
def serve(app: AppContext, host: str, port: int, threads: int, archive: Path | None) -> None:
    """Serve one-click unsubscribe (/unsubscribe) and the published archive, under waitress."""
    from digest.web.server import start_server

    server = start_server(app.project_settings, host=host, port=port, threads=threads, archive=archive)
    click.echo(f"digest serve: {server.url}/unsubscribe and the archive, {threads} threads (Ctrl-C stops)")
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    click.echo("stopped.")


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Site folder (default: out/site). It is a link to the newest generation, swapped atomically.")
@pass_app
def publish(app: AppContext, out: Path | None) -> None:
    """Write the web archive: sent and `public: true` issues, their images, an index and feed.xml."""
    from digest.publish.site import publish_site

    result = publish_site(app.project_settings, out)
    reused = len(result.issues) - len(result.rendered)
    click.echo(f"published {len(result.issues)} issue(s) to {display(result.folder)} "
               f"({len(result.rendered)} rendered, {reused} unchanged; {result.files} files)")
    for slug in result.issues:
        click.echo(f"  {slug}")
