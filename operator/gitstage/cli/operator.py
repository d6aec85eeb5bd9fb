"""`gitstage operator`: runs the kopf operator (gitstage.operator.handlers) with its settings."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

from gitstage.cli.flags import examples
from gitstage.cli.oneline import fail
from gitstage.operator.settings import (
    ANY_ADDRESS,
    LOCALHOST,
    SCANNING_ENV,
    OperatorSettings,
    SettingsError,
    WebhookLimits,
)

F = TypeVar("F", bound=Callable[..., object])
_LIMITS = WebhookLimits()
# (flag after --webhook-, click type, default, help): each also read from GITSTAGE_WEBHOOK_<NAME>.
_WEBHOOK_LIMITS: tuple[tuple[str, click.FloatRange | click.IntRange, float, str], ...] = (
    (
        "header-timeout",
        click.FloatRange(0, 3600, min_open=True),
        _LIMITS.header_timeout,
        "Seconds a webhook connection has to send its request line and headers.",
    ),
    (
        "body-timeout",
        click.FloatRange(0, 3600, min_open=True),
        _LIMITS.body_timeout,
        "Seconds a webhook request has to send its body once its headers are in (else 408).",
    ),
    (
        "idle-timeout",
        click.FloatRange(0, 3600, min_open=True),
        _LIMITS.idle_timeout,
        "Seconds a kept-alive webhook connection may wait for its next request.",
    ),
    (
        "max-connections",
        click.IntRange(1, 65535),
        _LIMITS.max_connections,
        "Open webhook connections at most; past it the stalest is closed, or the new one "
        "refused (503).",
    ),
    (
        "max-header-bytes",
        click.IntRange(1024, 1 << 20),
        _LIMITS.max_header_bytes,
        "Bytes of a webhook request line and headers together at most (else 431).",
    ),
)


def webhook_limit_options(command: F) -> F:
    for flag, kind, default, text in reversed(_WEBHOOK_LIMITS):
        option = click.option(
            f"--webhook-{flag}",
            type=kind,
            default=default,
            show_default=True,
            envvar=limit_env(flag),
            help=text,
        )
        command = option(command)
    return command


def limit_env(flag: str) -> str:
    return "GITSTAGE_WEBHOOK_" + flag.upper().replace("-", "_")


@click.command(
    "operator",
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
@webhook_limit_options
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
    "--default-service-account",
    default="",
    envvar="GITSTAGE_DEFAULT_SERVICE_ACCOUNT",
    help="Impersonate this ServiceAccount of a ModelRegistry's namespace when its "
    "spec.serviceAccountName is unset. Default: act as the operator itself.",
)
@click.option(
    "--require-service-account",
    is_flag=True,
    envvar="GITSTAGE_REQUIRE_SERVICE_ACCOUNT",
    help="Refuse ModelRegistries that name no ServiceAccount (when no default is set): "
    "the operator then never acts with its own rights for a tenant.",
)
@click.option(
    "--allow-privileged",
    is_flag=True,
    envvar="GITSTAGE_ALLOW_PRIVILEGED",
    help="Let pod templates be privileged or add capabilities beyond Pod Security's baseline.",
)
@click.option(
    "--allow-host-namespaces",
    is_flag=True,
    envvar="GITSTAGE_ALLOW_HOST_NAMESPACES",
    help="Let pod templates use the host's network, PID or IPC namespace, or hostPorts.",
)
@click.option(
    "--allow-host-path",
    is_flag=True,
    envvar="GITSTAGE_ALLOW_HOST_PATH",
    help="Let pod templates mount hostPath volumes.",
)
@click.option(
    "--allowed-fetcher-image",
    "allowed_fetcher_images",
    multiple=True,
    help="A fetcher image ModelRegistries may choose, as a glob (repeatable), e.g. "
    "'registry.example.com/ml/*'. The operator's own fetcher image is always allowed.",
)
@click.option(
    "--leader-elect",
    is_flag=True,
    envvar="GITSTAGE_LEADER_ELECTION",
    help="Elect a leader on a coordination.k8s.io Lease (POD_NAMESPACE/gitstage-operator): "
    "run several replicas, one reconciles, the others keep their mirrors warm.",
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
def operator_command(**params: Any) -> None:
    """Run the operator against the current kubeconfig (or the in-cluster account)."""
    try:
        import kopf.cli
    except ModuleNotFoundError:
        fail("gitstage operator needs its extra: pip install 'gitstage[operator]'", 2)

    env = settings_env(params)
    try:  # fail here, in one line, rather than in kopf's startup with a traceback
        OperatorSettings.from_env({**os.environ, **env})
    except SettingsError as error:
        fail(str(error), 2)
    # The kopf handlers read their settings from the environment (see operator/settings.py).
    os.environ.update(env)
    limit_malloc_arenas()
    args = kopf_arguments(
        params["namespaces"],
        params["liveness"],
        params["peering"],
        params["verbose"],
        params["log_format"],
    )
    kopf.cli.main(args=args, prog_name="gitstage operator")


MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's mallopt parameter number


def limit_malloc_arenas(environ: Mapping[str, str] | None = None) -> bool:
    """At most MALLOC_ARENAS glibc malloc arenas, before any thread starts (True if set).

    glibc gives each thread that allocates its own arena, up to eight per core, and memory freed
    in one stays there: the operator's threads decode every API response, so resident memory
    grew with the thread pool, not with the registries. `MALLOC_ARENA_MAX` in the environment
    wins; on another C library this does nothing.
    """
    env = os.environ if environ is None else environ
    if "MALLOC_ARENA_MAX" in env:
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_ARENA_MAX, MALLOC_ARENAS))


def settings_env(params: Mapping[str, Any]) -> dict[str, str]:
    """The GITSTAGE_* variables `gitstage operator`'s options stand for (operator/settings.py)."""
    env = {
        "GITSTAGE_WEBHOOK_PORT": str(params["webhook_port"] or ""),
        "GITSTAGE_WEBHOOK_ADDRESS": params["webhook_address"],
        "GITSTAGE_WEBHOOK_SECRET_FILE": str(params["webhook_secret_file"] or ""),
        "GITSTAGE_METRICS_PORT": str(params["metrics_port"] or ""),
        "GITSTAGE_METRICS_ADDRESS": params["metrics_address"],
        SCANNING_ENV: _flag(params["scan"]),
        "GITSTAGE_DEFAULT_SERVICE_ACCOUNT": params["default_service_account"],
        "GITSTAGE_REQUIRE_SERVICE_ACCOUNT": _flag(params["require_service_account"]),
        "GITSTAGE_ALLOW_PRIVILEGED": _flag(params["allow_privileged"]),
        "GITSTAGE_ALLOW_HOST_NAMESPACES": _flag(params["allow_host_namespaces"]),
        "GITSTAGE_ALLOW_HOST_PATH": _flag(params["allow_host_path"]),
        "GITSTAGE_LEADER_ELECTION": _flag(params["leader_elect"]),
    }
    if params["allowed_fetcher_images"]:
        env["GITSTAGE_ALLOWED_FETCHER_IMAGES"] = "\n".join(params["allowed_fetcher_images"])
    env.update(
        {
            "GITSTAGE_DASHBOARD_PORT": str(params["dashboard_port"] or ""),
            "GITSTAGE_DASHBOARD_ADDRESS": params["dashboard_address"],
            "GITSTAGE_DASHBOARD_TOKEN_FILE": str(params["dashboard_token_file"] or ""),
            "GITSTAGE_DASHBOARD_USER_HEADER": params["dashboard_user_header"] or "",
            "GITSTAGE_DASHBOARD_NAMESPACES": ",".join(params["dashboard_namespaces"]),
        }
    )
    for flag, *_ in _WEBHOOK_LIMITS:
        env[limit_env(flag)] = str(params["webhook_" + flag.replace("-", "_")])
    return env


def _flag(value: bool) -> str:
    return "1" if value else "0"


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
