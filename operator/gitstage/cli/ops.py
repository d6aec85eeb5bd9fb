"""Operations on ModelRegistries in the cluster, as `flux get|reconcile|suspend|resume` give:
`gitstage get registries|deployments`, `gitstage reconcile`, `gitstage suspend`, `resume`.

Also a kubectl plugin: `kubectl gitstage get registries -A` runs the same commands.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
import yaml

from gitstage.cli.flags import examples
from gitstage.cli.oneline import fail
from gitstage.cli.ops_view import RegistryView, deployment_rows, registry_rows
from gitstage.cli.table import render_table
from gitstage.resources.v1alpha1 import DURATION_PATTERN, duration_seconds

REQUESTED_AT = "gitstage.dev/requestedAt"
OUTPUTS = click.Choice(["table", "wide", "json", "yaml"])
T = TypeVar("T")


# ParamType is generic only from click 8.2 (the stubs say so; 8.1 cannot subscript it).
class Duration(click.ParamType):  # type: ignore[type-arg,unused-ignore]
    """A duration as the ModelRegistry's fields take them (90s, 5m, 1h30m), or plain seconds."""

    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, int | float):
            return float(value)
        text = str(value).strip()
        if re.fullmatch(r"[0-9]+(\.[0-9]+)?", text):
            return float(text)
        if re.fullmatch(DURATION_PATTERN, text):
            return duration_seconds(text)
        self.fail(f"{text!r} is not a duration such as 90s, 5m or 1h30m", param, ctx)


WAIT = Duration()


def _namespace_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option("-A", "--all-namespaces", is_flag=True, help="Every namespace.")(command)
    return click.option(
        "-n", "--namespace", default=None, help="Namespace (default: the kubeconfig context's)."
    )(command)


@click.group(
    "get",
    epilog=examples(
        "gitstage get registries -A",
        "gitstage get deployments -n ml -o wide",
    ),
)
def get_group() -> None:
    """List ModelRegistries or the Deployments they serve, from their status."""


@get_group.command(
    "registries",
    epilog=examples(
        "gitstage get registries -n ml",
        "gitstage get registries -A -o wide",
        "kubectl gitstage get registries -A -o json",
    ),
)
@_namespace_options
@click.option("-o", "--output", type=OUTPUTS, default="table", show_default=True)
def get_registries(namespace: str | None, all_namespaces: bool, output: str) -> None:
    """One line per ModelRegistry: Ready, its reason, suspension and its Deployments."""
    bodies = _list(namespace, all_namespaces)
    if output in ("json", "yaml"):
        _dump(bodies, output)
        return
    items = [RegistryView.of(body) for body in bodies]
    headers, rows = registry_rows(items, wide=output == "wide", all_namespaces=all_namespaces)
    _print_table(headers, rows, "no ModelRegistries found")


@get_group.command(
    "deployments",
    epilog=examples("gitstage get deployments -n ml", "gitstage get deployments -A -o wide"),
)
@_namespace_options
@click.option("-o", "--output", type=OUTPUTS, default="table", show_default=True)
def get_deployments(namespace: str | None, all_namespaces: bool, output: str) -> None:
    """One line per served Deployment: desired vs observed version and the rollout."""
    items = [RegistryView.of(body) for body in _list(namespace, all_namespaces)]
    headers, rows = deployment_rows(items, wide=output == "wide", all_namespaces=all_namespaces)
    if output in ("json", "yaml"):
        states = [
            {"namespace": item.namespace, "registry": item.name, **state.model_dump(by_alias=True)}
            for item in items
            for state in item.status.deployments
        ]
        _dump(states, output)
        return
    _print_table(headers, rows, "no served Deployments found")


@click.command(
    "reconcile",
    epilog=examples("gitstage reconcile churn -n ml", "gitstage reconcile churn --timeout 5m"),
)
@click.argument("name")
@click.option("-n", "--namespace", default=None, help="Namespace (default: the context's).")
@click.option("--timeout", type=WAIT, default="2m", show_default=True, help="How long to wait.")
def reconcile_command(name: str, namespace: str | None, timeout: float) -> None:
    """Poll the repository now and reconcile; wait for the result. Exit 0 when Ready."""
    namespace = _namespace(namespace)
    _request_and_wait(namespace, name, timeout)


@click.command("suspend", epilog=examples("gitstage suspend churn -n ml"))
@click.argument("name")
@click.option("-n", "--namespace", default=None, help="Namespace (default: the context's).")
def suspend_command(name: str, namespace: str | None) -> None:
    """Stop polling and reconciling; the Deployments keep running as they are."""
    namespace = _namespace(namespace)
    _patch(namespace, name, {"spec": {"suspend": True}})
    click.echo(f"► suspended ModelRegistry {namespace}/{name}")


@click.command("resume", epilog=examples("gitstage resume churn -n ml"))
@click.argument("name")
@click.option("-n", "--namespace", default=None, help="Namespace (default: the context's).")
@click.option("--timeout", type=WAIT, default="2m", show_default=True, help="How long to wait.")
def resume_command(name: str, namespace: str | None, timeout: float) -> None:
    """Resume a suspended ModelRegistry, then reconcile it at once and wait for the result."""
    namespace = _namespace(namespace)
    _patch(namespace, name, {"spec": {"suspend": False}})
    click.echo(f"► resumed ModelRegistry {namespace}/{name}")
    _request_and_wait(namespace, name, timeout)


def _request_and_wait(namespace: str, name: str, timeout: float) -> None:
    from gitstage.adapters.kube import registries

    requested = datetime.now(UTC).isoformat()
    _patch(namespace, name, {"metadata": {"annotations": {REQUESTED_AT: requested}}})
    click.echo(f"► annotating ModelRegistry {namespace}/{name} (requestedAt {requested})")
    deadline = time.monotonic() + timeout
    while True:
        body = _api_call(lambda: registries.read_registry(namespace, name))
        if body is None:
            fail(f"ModelRegistry {namespace}/{name} was deleted while waiting", 1)
        view = RegistryView.of(body)
        if view.status.last_handled_reconcile_at == requested:
            break
        if time.monotonic() > deadline:
            fail(f"timed out after {timeout:.0f}s waiting for {namespace}/{name} to reconcile", 1)
        time.sleep(0.5)  # polling the API server; the deadline above bounds it
    ready, line = view.ready, view.summary_line()
    if ready is None or ready.status != "True":
        fail(f"ModelRegistry {namespace}/{name}: {line}", 1)
    click.echo(f"✔ ModelRegistry {namespace}/{name}: {line}")


def _list(namespace: str | None, all_namespaces: bool) -> list[dict[str, Any]]:
    from gitstage.adapters.kube import registries

    where = None if all_namespaces else _namespace(namespace)
    return _api_call(lambda: registries.list_registries(where))


def _patch(namespace: str, name: str, body: dict[str, Any]) -> None:
    from gitstage.adapters.kube import registries

    _api_call(lambda: registries.patch_registry(namespace, name, body), name=f"{namespace}/{name}")


def _namespace(namespace: str | None) -> str:
    if namespace:
        return namespace
    from gitstage.adapters.kube.client import current_namespace

    return current_namespace()


def _api_call(call: Callable[[], T], *, name: str | None = None) -> T:
    """The call, or one line saying why the API server (or the kubeconfig) refused it."""
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException

    from gitstage.adapters.kube.deployments import api_message

    try:
        return call()
    except ApiException as error:
        if error.status == 404 and name is not None:
            fail(f"ModelRegistry {name} not found", 1)
        if error.status == 0:  # no answer: rest.py names why the connection failed
            fail(str(error.reason), 1)
        fail(f"the API server refused: {api_message(error)}", 1)
    except ConfigException as error:
        fail(f"no usable kubeconfig: {error}", 1)
    except Exception as error:  # urllib3's connection errors: one line, not a traceback
        fail(f"cannot reach the API server: {error}", 1)


def _dump(items: list[dict[str, Any]], output: str) -> None:
    if output == "json":
        click.echo(json.dumps(items, indent=2, sort_keys=True))
    else:
        click.echo(yaml.safe_dump_all(items, sort_keys=True) if items else "")


def _print_table(headers: list[str], rows: list[list[str]], empty: str) -> None:
    if not rows:
        click.echo(empty, err=True)
        return
    click.echo(render_table(headers, rows, plain=True))
