"""`gitstage get | reconcile | suspend | resume`, and the same as `kubectl gitstage ...`, on the
real control plane against a running operator (test_operator's environment: a served registry,
the operator in-process, real pods)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gitstage.dev.binaries import binaries_dir
from tests.e2e.kubeutil import eventually
from tests.e2e.test_operator import (
    GROUP,
    PLURAL,
    VERSION,
    Env,
    condition,
    custom,
    get_registry,
    model_registry,
)
from tests.e2e.test_operator import env as operator_env  # noqa: F401 - a fixture, by this name

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent


def gitstage(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "gitstage"), *args], capture_output=True, text=True, check=False, timeout=180
    )


@pytest.fixture(scope="module")
def served(operator_env: Env) -> Env:  # noqa: F811 - the fixture imported above
    """ModelRegistry `ops` serving churn#prod (Ready), and `locked` whose Secret is wrong."""
    env = operator_env
    commit = env.registry.commit("ops weights")
    env.registry.tag("churn@v3.0.0", commit)
    env.registry.tag("churn#prod#1", commit)
    body = model_registry(env, "ops")
    custom().create_namespaced_custom_object(GROUP, VERSION, env.namespace, PLURAL, body)
    locked = model_registry(env, "locked", secret="wrong-auth")
    custom().create_namespaced_custom_object(GROUP, VERSION, env.namespace, PLURAL, locked)
    eventually(
        lambda: (condition(env, "ops", "Ready") or {}).get("status") == "True",
        timeout=120,
        what="ops Ready",
    )
    return env


def test_get_registries_and_deployments(served: Env) -> None:
    listed = gitstage("get", "registries", "-n", served.namespace)
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split()[:4] == ["NAME", "READY", "REASON", "SUSPENDED"]
    ops = next(r.split() for r in rows if r.startswith("ops "))
    assert ops[1:4] == ["True", "Serving", "false"]
    assert "ops-prod=churn#prod@v3.0.0 (Complete)" in listed.stdout
    everywhere = gitstage("get", "registries", "-A", "-o", "wide")
    assert everywhere.returncode == 0, everywhere.stderr
    assert everywhere.stdout.splitlines()[0].startswith("NAMESPACE")
    assert any(line.startswith(served.namespace) for line in everywhere.stdout.splitlines())
    as_json = json.loads(gitstage("get", "registries", "-n", served.namespace, "-o", "json").stdout)
    assert {item["metadata"]["name"] for item in as_json} >= {"ops", "locked"}
    deployments = gitstage("get", "deployments", "-n", served.namespace, "-o", "wide")
    row = next(line.split() for line in deployments.stdout.splitlines() if " ops-prod " in line)
    assert row[:7] == ["ops", "ops-prod", "churn", "prod", "v3.0.0", "v3.0.0", "Complete"]
    assert row[7] == "2/2"


def test_reconcile_waits_for_the_result(served: Env) -> None:
    done = gitstage("reconcile", "ops", "-n", served.namespace)
    assert done.returncode == 0, done.stderr
    assert f"✔ ModelRegistry {served.namespace}/ops: Ready=True Serving" in done.stdout
    handled = get_registry(served, "ops")["status"]["lastHandledReconcileAt"]
    annotations = get_registry(served, "ops")["metadata"]["annotations"]
    assert annotations["gitstage.dev/requestedAt"] == handled


@pytest.mark.fault
def test_reconcile_of_a_failing_or_missing_registry_is_one_line_and_exit_1(served: Env) -> None:
    eventually(lambda: condition(served, "locked", "Stalled"), timeout=60, what="locked status")
    failing = gitstage("reconcile", "locked", "-n", served.namespace, "--timeout", "60")
    assert failing.returncode == 1
    (line,) = failing.stderr.splitlines()
    assert line.startswith(f"gitstage: error: ModelRegistry {served.namespace}/locked: Ready=False")
    assert "AuthenticationFailed" in line
    missing = gitstage("reconcile", "nobody", "-n", served.namespace)
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        f"gitstage: error: ModelRegistry {served.namespace}/nobody not found"
    )


def test_suspend_and_resume(served: Env) -> None:
    suspended = gitstage("suspend", "ops", "-n", served.namespace)
    assert suspended.returncode == 0, suspended.stderr
    assert get_registry(served, "ops")["spec"]["suspend"] is True
    eventually(
        lambda: (condition(served, "ops", "Ready") or {}).get("reason") == "Suspended",
        what="Suspended",
    )
    row = gitstage("get", "registries", "-n", served.namespace).stdout
    assert next(r for r in row.splitlines() if r.startswith("ops ")).split()[3] == "true"
    resumed = gitstage("resume", "ops", "-n", served.namespace)
    assert resumed.returncode == 0, resumed.stderr
    assert get_registry(served, "ops")["spec"]["suspend"] is False
    assert "Ready=True Serving" in resumed.stdout


def test_kubectl_runs_it_as_a_plugin(served: Env) -> None:
    kubectl = str(binaries_dir() / "kubectl")
    environment = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    plugins = subprocess.run(
        [kubectl, "plugin", "list"], capture_output=True, text=True, env=environment, check=False
    )
    assert str(BIN / "kubectl-gitstage") in plugins.stdout
    listed = subprocess.run(
        [kubectl, "gitstage", "get", "registries", "-n", served.namespace],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert any(line.startswith("ops ") for line in listed.stdout.splitlines())
