"""Webhooks and metrics end to end: real control plane, real git smart-HTTP server with basic auth,
the operator in-process with its webhook receiver and /metrics on loopback ports.

The ModelRegistry polls once an hour: only the webhook can explain a prompt rollout.
"""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kopf.testing import KopfRunner
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitstage.adapters.mirror.poll_types import PollerStats
from gitstage.dev.git_server import BasicAuth, GitHttpServer
from gitstage.operator import handlers
from tests.conftest import Kube
from tests.e2e.kubeutil import (
    KOPF_ARGS,
    api,
    eventually,
    install_crd,
    namespace_with_git_secret,
    serving_template,
)
from tests.e2e.test_operator import Registry
from tests.support import exported_metrics
from tests.support import forge_payloads as fp
from tests.support.git import init_served_bare

pytestmark = pytest.mark.e2e

GROUP, VERSION, PLURAL = "gitstage.dev", "v1alpha1", "modelregistries"
PASSWORD = "hook-pw-" + uuid.uuid4().hex[:6]
SECRET = "hook-secret-" + uuid.uuid4().hex[:8]
NAME = "hooked"
PROMPT = 15.0  # seconds: far below the hour-long poll interval


@dataclass
class Env:
    registry: Registry
    url: str
    namespace: str
    runner: KopfRunner
    hooks: str  # base URL of the webhook receiver
    metrics: str  # URL of /metrics


def listening(name: str) -> str | None:
    endpoint = handlers.ENDPOINTS.get(name)
    return f"http://127.0.0.1:{endpoint.port}" if endpoint else None


@pytest.fixture(scope="module")
def env(kube: Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("hooks-git")
    bare = root / "hooked.git"
    init_served_bare(bare)
    namespace = setup_namespace()
    settings = {
        "GITSTAGE_CACHE_DIR": str(tmp_path_factory.mktemp("hooks-mirrors")),
        "GITSTAGE_WEBHOOK_PORT": "0",
        "GITSTAGE_WEBHOOK_ADDRESS": "127.0.0.1",
        "GITSTAGE_WEBHOOK_SECRET": SECRET,
        "GITSTAGE_METRICS_PORT": "0",
        "GITSTAGE_METRICS_ADDRESS": "127.0.0.1",
    }
    try:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in settings.items():
                patch.setenv(key, value)
            with GitHttpServer(
                root, auth=BasicAuth("alice", PASSWORD), host=kube.node_address
            ) as server:
                url = server.url("hooked.git")
                registry = clone(url, root / "clone")
                with KopfRunner(KOPF_ARGS, timeout=60) as runner:
                    hooks = eventually(lambda: listening("webhooks"), what="the webhook listener")
                    scrape = eventually(lambda: listening("metrics"), what="the metrics listener")
                    yield Env(registry, url, namespace, runner, hooks, scrape + "/metrics")
                assert PASSWORD not in runner.output
                assert SECRET not in runner.output
    finally:
        client.CoreV1Api(api()).delete_namespace(namespace)


def setup_namespace() -> str:
    install_crd()
    return namespace_with_git_secret("hooks", "alice", PASSWORD)


def clone(url: str, path: Path) -> Registry:
    authed = url.replace("http://", f"http://alice:{PASSWORD}@")
    subprocess.run(["git", "clone", "-q", authed, str(path)], check=True, capture_output=True)
    registry = Registry(path, url)
    registry.git("checkout", "-q", "-b", "main")
    (path / "artifacts.yaml").write_text("churn:\n  type: model\n  path: models/churn.txt\n")
    return registry


def forge_repo(env: Env) -> fp.ForgeRepo:
    """The loopback repository as GitHub would name it (clone URL without `.git`)."""
    return fp.ForgeRepo(
        env.url.removesuffix(".git"), "git@127.0.0.1:ml/hooked.git", env.url, "ml/hooked"
    )


def deliver(env: Env, delivery: fp.Delivery) -> tuple[int, str]:
    request = urllib.request.Request(  # noqa: S310 - a loopback http URL we built
        env.hooks + delivery.path, data=delivery.body, headers=delivery.headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.read().decode().strip()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode().strip()


def served_commit(env: Env) -> str | None:
    try:
        found = client.AppsV1Api(api()).read_namespaced_deployment(f"{NAME}-prod", env.namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    meta = found.spec.template.metadata if found.spec else None
    return (meta.annotations or {}).get("gitstage.dev/commit") if meta else None


def stats(env: Env) -> PollerStats:
    found = handlers.FEEDS[0].stats_for(f"{env.namespace}/{NAME}")
    assert found is not None, "the registry follows no poller"
    return found


def idle(env: Env) -> bool:
    current = stats(env)
    return current.polls >= 1 and not current.in_flight and not current.request_pending


def scrape(env: Env) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return exported_metrics.scrape(env.metrics)


@pytest.fixture(scope="module")
def first(env: Env) -> str:
    """v0.0.1 in prod, tagged with plain `git tag -a`, served by a ModelRegistry polling hourly."""
    c1 = env.registry.commit("weights-1")
    env.registry.tag("churn@v0.0.1", c1)
    env.registry.tag("churn#prod#1", c1)
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelRegistry",
        "metadata": {"name": NAME},
        "spec": {
            "source": {"url": env.url, "interval": "1h", "secretRef": {"name": "git-auth"}},
            "deployments": [
                {
                    "name": f"{NAME}-prod",
                    "artifact": "churn",
                    "stage": "prod",
                    "replicas": 1,
                    "template": serving_template(),
                }
            ],
        },
    }
    client.CustomObjectsApi(api()).create_namespaced_custom_object(
        GROUP, VERSION, env.namespace, PLURAL, body
    )
    eventually(lambda: served_commit(env) == c1, timeout=60, what="the first rollout")
    eventually(lambda: idle(env), what="the first poll to end")
    assert stats(env).interval == 3600.0
    return c1


def test_a_signed_push_of_an_annotated_stage_tag_rolls_out_at_once(env: Env, first: str) -> None:
    polls = stats(env).polls
    c2 = env.registry.commit("weights-2")
    env.registry.tag("churn@v0.0.2", c2)
    env.registry.tag("churn#prod#2", c2)
    tag_object = env.registry.git("rev-parse", "refs/tags/churn#prod#2")
    assert tag_object != c2  # annotated: the payload's `after` is not the commit
    secret = SECRET.encode()
    bad = fp.github_push(forge_repo(env), "refs/tags/churn#prod#2", tag_object, b"not-it")
    assert deliver(env, bad) == (401, "X-Hub-Signature-256 does not match the body")
    assert stats(env).polls == polls
    assert not stats(env).request_pending
    started = time.monotonic()
    good = fp.github_push(forge_repo(env), "refs/tags/churn#prod#2", tag_object, secret)
    assert deliver(env, good) == (202, "accepted")
    eventually(lambda: served_commit(env) == c2, timeout=PROMPT, what="rollout after the webhook")
    assert time.monotonic() - started < PROMPT
    assert stats(env).polls > polls


def test_many_tags_pushed_at_once_without_per_tag_events_still_roll_out(
    env: Env, first: str
) -> None:
    """GitHub sends no tag events for pushes of more than three tags; a branch push still polls."""
    c3 = env.registry.commit("weights-3")
    for name in ["churn@v0.0.3", "churn#dev#3", "churn#staging#4", "churn#prod#5"]:
        env.registry.clock = max(env.registry.clock + 2, int(time.time()) + 2)
        env.registry.git("tag", "-a", name, "-m", name, c3, date=env.registry.clock)
    env.registry.git("push", "-q", "origin", "--tags")
    delivery = fp.generic_push([env.url], SECRET.encode())  # names no ref at all
    assert deliver(env, delivery) == (202, "accepted")
    eventually(lambda: served_commit(env) == c3, timeout=PROMPT, what="rollout of the bulk push")


def test_metrics_show_polls_rollouts_serving_versions_and_writes(env: Env, first: str) -> None:
    eventually(lambda: served_commit(env) == env.registry.git("rev-parse", "HEAD"), what="c3")
    c3 = env.registry.git("rev-parse", "HEAD")

    def serving() -> dict[str, str] | None:
        for (name, labels), _ in scrape(env).items():
            found = dict(labels)
            if name == "gitstage_serving_info" and found.get("namespace") == env.namespace:
                return found if found["commit"] == c3 else None
        return None

    info = eventually(serving, what="the serving info of v0.0.3")
    assert info == {
        "namespace": env.namespace,
        "registry": NAME,
        "deployment": f"{NAME}-prod",
        "artifact": "churn",
        "stage": "prod",
        "version": "v0.0.3",
        "commit": c3,
    }
    samples = scrape(env)
    rollouts = {
        dict(labels)["transition"]: value
        for (name, labels), value in samples.items()
        if name == "gitstage_rollout_transitions_total"
        and dict(labels)["namespace"] == env.namespace
    }
    assert rollouts == {"Created": 1.0, "RollingOut": 2.0}
    applies = (("resource", "deployments"), ("verb", "apply"))
    assert samples[("gitstage_kube_api_writes_total", applies)] >= 3
    repository = (("repository", env.url),)
    assert samples[("gitstage_poll_duration_seconds_count", repository)] >= 3
    accepted = (("forge", "github"), ("outcome", "accepted"))
    assert samples[("gitstage_webhook_requests_total", accepted)] >= 1
    assert PASSWORD not in str(samples)


def test_metrics_show_readiness_rollout_states_and_reconciles(env: Env, first: str) -> None:
    """The series of issue 18: from the status the API server holds and the worker's reconciles;
    no `*_created` series in the exposition."""
    registry = (("namespace", env.namespace), ("registry", NAME))

    def complete() -> dict[str, float] | None:
        samples = scrape(env)
        states = {
            dict(labels)["state"]: value
            for (name, labels), value in samples.items()
            if name == "gitstage_deployment_rollout" and dict(labels)["namespace"] == env.namespace
        }
        ready = samples.get(("gitstage_registry_ready", registry))
        return states if ready == 1.0 and states.get("Complete") == 1.0 else None

    states = eventually(complete, what="Ready and a Complete rollout in the gauges")
    assert sum(states.values()) == 1.0  # one state at a time
    samples = scrape(env)
    assert samples[("gitstage_reconciles_total", registry)] >= 1
    assert samples[("gitstage_policy_violations_total", registry)] == 0
    last_poll = samples[
        ("gitstage_last_successful_poll_timestamp_seconds", (("repository", env.url),))
    ]
    assert time.time() - 3600 < last_poll <= time.time()
    assert any(name == "gitstage_build_info" for name, _ in samples)
    with urllib.request.urlopen(env.metrics, timeout=10) as response:  # noqa: S310 - loopback
        assert "_created" not in response.read().decode()
