"""`gitstage operator`: runs the kopf operator (gitstage.operator.handlers) with its settings."""

from __future__ import annotations

import os
from pathlib import Path

import click

from gitstage.cli.flags import examples
from gitstage.cli.oneline import OneLineCommand, fail
from gitstage.operator.settings import (
    ANY_ADDRESS,
    LOCALHOST,
    SCANNING_ENV,
    OperatorSettings,
    SettingsError,
)


@click.command(
    "operator",
    cls=OneLineCommand,
    epilog=examples(
        "gitstage operator                       # all namespaces, the current kubeconfig",
        "gitstage operator -n ml -n ml-staging --no-scan",
        "gitstage operator --webhook-port 9443 --webhook-secret-file /etc/gitstage/hook",
        "gitstage operator --dashboard-port 8090   # the dashboard on 127.0.0.1:8090",
    ),
)
@click.option(
    "-n",
    "--namespace",
    "namespaces",
    multiple=True,
    help="Watch only this namespace (repeatable). Default: all namespaces.",
)
@click.option(
    "--liveness",
    default="http://0.0.0.0:8080/healthz",
    show_default=True,
    help="Liveness endpoint URL (empty to disable).",
)
@click.option(
    "--peering/--standalone",
    default=False,
    show_default=True,
    help="Use kopf peering (several replicas) or run standalone.",
)
@click.option(
    "--scan/--no-scan",
    default=True,
    show_default=True,
    help="Watch CRDs (and namespaces) cluster-wide to notice a CRD installed later; "
    "--no-scan needs no cluster-scoped access (use with -n and namespaced RBAC).",
)
@click.option(
    "--webhook-port",
    type=click.IntRange(1, 65535),
    default=None,
    envvar="GITSTAGE_WEBHOOK_PORT",
    help="Serve forge webhooks (POST /hooks/<forge>) on this port. Default: no receiver.",
)
@click.option(
    "--webhook-address", default=ANY_ADDRESS, show_default=True, help="Webhook bind address."
)
@click.option(
    "--webhook-secret-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    envvar="GITSTAGE_WEBHOOK_SECRET_FILE",
    help="File of webhook secrets, one per line (or set GITSTAGE_WEBHOOK_SECRET).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=9090,
    show_default=True,
    envvar="GITSTAGE_METRICS_PORT",
    help="Serve Prometheus metrics on /metrics at this port; 0 disables.",
)
@click.option(
    "--metrics-address", default=ANY_ADDRESS, show_default=True, help="Metrics bind address."
)
@click.option(
    "--dashboard-port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    envvar="GITSTAGE_DASHBOARD_PORT",
    help="Serve the read-only registry dashboard at this port; 0 disables.",
)
@click.option(
    "--dashboard-address",
    default=LOCALHOST,
    show_default=True,
    help="Dashboard bind address (0.0.0.0 in a pod, behind its Service).",
)
@click.option(
    "--dashboard-token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    envvar="GITSTAGE_DASHBOARD_TOKEN_FILE",
    help="Require this bearer token (the file's first line); browsers sign in at /login.",
)
@click.option(
    "--dashboard-user-header",
    default=None,
    envvar="GITSTAGE_DASHBOARD_USER_HEADER",
    help="Require a trusted proxy's header naming the user (e.g. X-Forwarded-User).",
)
@click.option(
    "--dashboard-namespace",
    "dashboard_namespaces",
    multiple=True,
    help="Show only this namespace's ModelRegistries on the dashboard (repeatable).",
)
@click.option("--verbose", is_flag=True, help="Debug logging.")
@click.option(
    "--log-format",
    type=click.Choice(["plain", "full", "json"]),
    default="plain",
    show_default=True,
    help="Log line format; json writes one JSON object per line.",
)
def operator_command(
    namespaces: tuple[str, ...],
    liveness: str,
    peering: bool,
    scan: bool,
    webhook_port: int | None,
    webhook_address: str,
    webhook_secret_file: Path | None,
    metrics_port: int,
    metrics_address: str,
    dashboard_port: int,
    dashboard_address: str,
    dashboard_token_file: Path | None,
    dashboard_user_header: str | None,
    dashboard_namespaces: tuple[str, ...],
    verbose: bool,
    log_format: str,
) -> None:
    """Run the operator against the current kubeconfig (or the in-cluster account)."""
    try:
        import kopf.cli
    except ModuleNotFoundError:
        fail("gitstage operator needs its extra: pip install 'gitstage[operator]'", 2)

    listeners = {
        "GITSTAGE_WEBHOOK_PORT": str(webhook_port or ""),
        "GITSTAGE_WEBHOOK_ADDRESS": webhook_address,
        "GITSTAGE_WEBHOOK_SECRET_FILE": str(webhook_secret_file or ""),
        "GITSTAGE_METRICS_PORT": str(metrics_port or ""),
        "GITSTAGE_METRICS_ADDRESS": metrics_address,
        SCANNING_ENV: "1" if scan else "0",
        "GITSTAGE_DASHBOARD_PORT": str(dashboard_port or ""),
        "GITSTAGE_DASHBOARD_ADDRESS": dashboard_address,
        "GITSTAGE_DASHBOARD_TOKEN_FILE": str(dashboard_token_file or ""),
        "GITSTAGE_DASHBOARD_USER_HEADER": dashboard_user_header or "",
        "GITSTAGE_DASHBOARD_NAMESPACES": ",".join(dashboard_namespaces),
    }
    try:  # fail here, in one line, rather than in kopf's startup with a traceback
        OperatorSettings.from_env({**os.environ, **listeners})
    except SettingsError as error:
        fail(str(error), 2)
    # The kopf handlers read their settings from the environment (see operator/settings.py).
    os.environ.update(listeners)
    args = kopf_arguments(namespaces, liveness, peering, verbose, log_format)
    kopf.cli.main(args=args, prog_name="gitstage operator")


def kopf_arguments(
    namespaces: tuple[str, ...], liveness: str, peering: bool, verbose: bool, log_format: str
) -> list[str]:
    """The `kopf run` command line that `gitstage operator` stands for."""
    args = ["run", "-m", "gitstage.operator.handlers", f"--log-format={log_format}"]
    args += [f"--namespace={ns}" for ns in namespaces] or ["--all-namespaces"]
    if liveness:
        args.append(f"--liveness={liveness}")
    if not peering:
        args.append("--standalone")
    if verbose:
        args.append("--verbose")
    return args
