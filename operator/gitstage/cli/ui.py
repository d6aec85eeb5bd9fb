"""`gitstage ui`: the dashboard's pages for repositories on this machine, without a cluster."""

from __future__ import annotations

import asyncio
import contextlib

import click

from gitstage.cli.flags import examples
from gitstage.cli.oneline import fail
from gitstage.dashboard.access import Access, AccessError, token_from_file
from gitstage.dashboard.local import LocalProvider, UnreadableRepository
from gitstage.dashboard.server import Dashboard, serve_until_stopped

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@click.command(
    "ui",
    epilog=examples(
        "gitstage ui                                  # the repository here, on 127.0.0.1:8088",
        "gitstage ui -r ../models -r https://git.example/registry.git",
        "gitstage ui -r . --port 9000 --interval 10",
    ),
)
@click.option(
    "-r",
    "--repo",
    "repos",
    multiple=True,
    help="A repository: a path or a URL (read through the mirror). Repeatable. Default: '.'.",
)
@click.option("--port", type=click.IntRange(0, 65535), default=8088, show_default=True)
@click.option(
    "--address",
    default="127.0.0.1",
    show_default=True,
    help="Bind address; anything but loopback lets others on the network read the registries.",
)
@click.option(
    "--interval",
    type=click.FloatRange(0.5, 3600),
    default=5.0,
    show_default=True,
    help="Seconds between reads of each repository (a URL: one ref listing when unchanged).",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Require this bearer token (the file's first line); browsers sign in at /login.",
)
@click.option(
    "--user-header",
    default=None,
    help="Require a trusted proxy's header naming the user (e.g. X-Forwarded-User).",
)
def ui_command(
    repos: tuple[str, ...],
    port: int,
    address: str,
    interval: float,
    token_file: str | None,
    user_header: str | None,
) -> None:
    """Serve the registry dashboard (models, versions, stages, audit trail) for one or several
    repositories, read-only, updating live as tags arrive."""
    try:
        access = Access(token_from_file(token_file) if token_file else None, user_header or None)
    except AccessError as error:
        fail(str(error), 2)
    provider = LocalProvider(list(repos) or ["."])
    try:
        provider.start()
    except UnreadableRepository as error:
        fail(str(error), 1)
    if address not in LOOPBACK and access.open:
        click.echo(
            f"gitstage ui: warning: serving on {address} without --token-file or --user-header: "
            "anyone who reaches the port reads these registries",
            err=True,
        )
    # On loopback only loopback names are answered (DNS rebinding); elsewhere the user chose.
    hosts = frozenset(LOOPBACK) if address in LOOPBACK else None
    dashboard = Dashboard(provider, access, hosts=hosts)

    def announce(bound: int) -> None:
        click.echo(f"dashboard: http://{address}:{bound}/", err=False)
        click.echo("gitstage ui: read-only; Ctrl-C stops it", err=True)

    with contextlib.suppress(KeyboardInterrupt):
        try:
            asyncio.run(
                serve_until_stopped(dashboard, address, port, announce, provider.follow(interval))
            )
        except OSError as error:
            fail(f"cannot listen on {address}:{port}: {error.strerror or error}", 1)
