"""The operator end to end: real control plane, real git smart-HTTP server with basic auth,
tags written with the real `gto` CLI and with plain `git tag -a`, the operator in-process."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest
from kopf.testing import KopfRunner
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitstage import api as api_
from gitstage.adapters.mirror.poll_types import PollerStats
from gitstage.dev.git_server import BasicAuth, GitHttpServer
from gitstage.operator import handlers
from tests.conftest import Kube
from tests.e2e.kubeutil import (
    KOPF_ARGS,
    api,
    eventually,
    namespace_with_git_secret,
    serving_template,
)
from tests.support.git import WorkingClone, init_served_bare
from tests.support.hostile_specs import HOSTILE, VALID
from tests.support.kstatus import argocd_health, kstatus
from tests.support.ssh_git_server import SshGitServer, SshKeyPair

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
GROUP, VERSION, PLURAL = "gitstage.dev", "v1alpha1", "modelregistries"
PASSWORD = "s3cret-" + uuid.uuid4().hex[:6]
GTO = str(Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "gto")


@dataclass
class Registry(WorkingClone):
    """A working clone that pushes to the served bare repository."""

    url: str
    clock: int = 0

    @property
    def clone(self) -> Path:
        return self.path

    def commit(self, model: str) -> str:
        return self.commit_and_push({"models/churn.txt": model}, f"model {model}")

    def tag(self, name: str, rev: str) -> None:
        """An annotated tag dated after every earlier one (GTO orders by tagger seconds)."""
        self.clock = max(self.clock + 2, int(time.time()) + 2)
        self.tag_and_push(name, rev, date=self.clock)

    def gto(self, *args: str) -> None:
        subprocess.run([GTO, *args], cwd=self.clone, check=True, capture_output=True)
        self.git("push", "-q", "origin", "--tags")
        self.clock = int(time.time()) + 1


class InNamespace(Protocol):
    namespace: str


class WithSource(InNamespace, Protocol):
    url: str


@dataclass
class Env:
    registry: Registry
    server: GitHttpServer
    url: str
    namespace: str
    runner: KopfRunner
    # Secret material tests hand to the operator: checked against its log once it has stopped
    # (KopfRunner.output blocks until then).
    secrets: list[str] = field(default_factory=lambda: [PASSWORD])


@pytest.fixture(scope="module")
def env(crd: Kube, mirror_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("git")
    bare = root / "registry.git"
    init_served_bare(bare)
    namespace = namespace_with_git_secret("ml", "alice", PASSWORD)
    core = client.CoreV1Api(api())
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="wrong-auth"),
            string_data={"username": "alice", "password": "not-" + PASSWORD},
        ),
    )
    with GitHttpServer(root, auth=BasicAuth("alice", PASSWORD), host=crd.node_address) as server:
        url = server.url("registry.git")
        clone = root / "clone"
        authed = url.replace("http://", f"http://alice:{PASSWORD}@")
        subprocess.run(["git", "clone", "-q", authed, str(clone)], check=True, capture_output=True)
        registry = Registry(clone, url)
        registry.git("checkout", "-q", "-b", "main")
        (clone / "artifacts.yaml").write_text("churn:\n  type: model\n  path: models/churn.txt\n")
        with KopfRunner(KOPF_ARGS, timeout=60) as runner:
            env = Env(registry, server, url, namespace, runner)
            yield env
        leaked = [secret[:8] + "..." for secret in env.secrets if secret in runner.output]
        assert not leaked, f"secrets in the operator log: {leaked}"
        core.delete_namespace(namespace)


def model_registry(
    env: WithSource,
    name: str,
    *,
    url: str | None = None,
    secret: str = "git-auth",
    interval: str = "1s",
) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelRegistry",
        "metadata": {"name": name},
        "spec": {
            "source": {"url": url or env.url, "interval": interval, "secretRef": {"name": secret}},
            "deployments": [
                {
                    "name": f"{name}-prod",
                    "artifact": "churn",
                    "stage": "prod",
                    "replicas": 2,
                    "template": serving_template(),
                }
            ],
        },
    }


def tools_read(env: InNamespace, name: str) -> tuple[str, str]:
    """What kstatus (kubectl, Flux, kpt) and Argo CD's shipped health check make of it."""
    registry = get_registry(env, name)
    return kstatus(registry), argocd_health(registry)[0]


def custom() -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api())


def get_registry(env: InNamespace, name: str) -> dict[str, Any]:
    result: dict[str, Any] = custom().get_namespaced_custom_object(
        GROUP, VERSION, env.namespace, PLURAL, name
    )
    return result


def condition(env: InNamespace, name: str, kind: str) -> dict[str, Any] | None:
    conditions = (get_registry(env, name).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == kind), None)


def deployment(env: InNamespace, name: str) -> client.V1Deployment | None:
    try:
        return client.AppsV1Api(api()).read_namespaced_deployment(name, env.namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def served_commit(env: InNamespace, name: str) -> str | None:
    found = deployment(env, name)
    if found is None or found.spec is None or found.spec.template.metadata is None:
        return None
    return (found.spec.template.metadata.annotations or {}).get("gitstage.dev/commit")


def running_pods(env: InNamespace, commit: str) -> int:
    pods = client.CoreV1Api(api()).list_namespaced_pod(env.namespace)
    return sum(
        1
        for p in pods.items
        if p.status
        and p.status.phase == "Running"
        and p.metadata
        and (p.metadata.annotations or {}).get("gitstage.dev/commit") == commit
        and p.metadata.deletion_timestamp is None
    )


def settled(env: InNamespace, name: str) -> bool:
    found = deployment(env, name)
    if found is None or found.status is None or found.metadata is None:
        return False
    status = found.status
    counts = {
        status.replicas,
        status.updated_replicas,
        status.ready_replicas,
        status.available_replicas,
    }
    return counts == {2} and status.observed_generation == found.metadata.generation


def events(env: InNamespace, reason: str) -> list[str]:
    found = client.CoreV1Api(api()).list_namespaced_event(env.namespace)
    return [e.message or "" for e in found.items if e.reason == reason]


def patch_registry(env: InNamespace, name: str, body: dict[str, Any]) -> None:
    custom().patch_namespaced_custom_object(GROUP, VERSION, env.namespace, PLURAL, name, body)


@pytest.fixture(scope="module")
def commits(env: Env) -> dict[str, str]:
    """v0.0.1 registered and assigned to prod with the real gto CLI."""
    c1 = env.registry.commit("weights-1")
    env.registry.gto("register", "churn")
    env.registry.gto("assign", "churn", "--stage", "prod")
    custom().create_namespaced_custom_object(
        GROUP, VERSION, env.namespace, PLURAL, model_registry(env, "churn")
    )
    return {"v1": c1}


@pytest.mark.fault
@pytest.mark.parametrize("name", ["valid", *HOSTILE])
def test_the_api_server_and_the_model_agree_on_every_hostile_spec(env: Env, name: str) -> None:
    """The CRD's schema and CEL rules refuse what the model refuses (tests/unit/
    test_spec_parity.py), and admit the valid spec: a server-side dry run of each."""
    spec = VALID if name == "valid" else HOSTILE[name]
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelRegistry",
        "metadata": {"name": "parity"},
        "spec": spec,
    }

    def create() -> object:
        return custom().create_namespaced_custom_object(
            GROUP, VERSION, env.namespace, PLURAL, body, dry_run="All"
        )

    if name == "valid":
        create()
        return
    with pytest.raises(ApiException) as refused:
        create()
    assert refused.value.status == 422, refused.value.body


@pytest.mark.fault
def test_the_api_server_refuses_a_source_url_with_a_password(env: Env) -> None:
    """The CRD's CEL rule, the same as the model's validator: the password would otherwise be
    copied into every fetcher's pod spec."""
    body = model_registry(env, "leaky", url=env.url.replace("http://", "http://alice:pw@"))
    with pytest.raises(ApiException) as refused:
        custom().create_namespaced_custom_object(GROUP, VERSION, env.namespace, PLURAL, body)
    assert refused.value.status == 422
    assert "must not hold a password" in str(refused.value.body)
    assert "pw@" not in str(refused.value.body)


def test_a_stage_assignment_rolls_out_pinned_to_the_commit(
    env: Env, commits: dict[str, str]
) -> None:
    c1 = commits["v1"]
    assert eventually(lambda: served_commit(env, "churn-prod") == c1, timeout=90, what="rollout")
    assert eventually(lambda: running_pods(env, c1) == 2, timeout=90, what="2 pods Running")
    ready = eventually(
        lambda: (condition(env, "churn", "Ready") or {}).get("status") == "True",
        timeout=60,
        what="Ready=True",
    )
    assert ready
    status = get_registry(env, "churn")["status"]
    stage = status["registry"][0]["stages"][0]
    assert (stage["stage"], stage["version"], stage["commit"]) == ("prod", "v0.0.1", c1)
    assert status["deployments"][0]["observedVersion"] == "v0.0.1"
    assert tools_read(env, "churn") == ("Current", "Healthy")


def test_new_assignment_rolls_forward_and_unassign_rolls_back(
    env: Env, commits: dict[str, str]
) -> None:
    c1 = commits["v1"]
    c2 = env.registry.commit("weights-2")
    commits["v2"] = c2
    env.registry.tag("churn@v0.0.2", c2)
    env.registry.tag("churn#prod#2", c2)
    assert eventually(
        lambda: served_commit(env, "churn-prod") == c2, timeout=60, what="roll forward"
    )
    assert eventually(lambda: running_pods(env, c2) == 2, timeout=90, what="new pods Running")
    assert eventually(lambda: events(env, "RollingOut"), what="RollingOut event")
    env.registry.tag("churn#prod!#3", c2)
    assert eventually(lambda: served_commit(env, "churn-prod") == c1, timeout=60, what="rollback")
    assert eventually(lambda: events(env, "RolledBack"), what="RolledBack event")


def test_an_idle_registry_makes_no_api_writes(env: Env, commits: dict[str, str]) -> None:
    """Once the rollout has settled, polls of an unchanged remote write nothing anywhere."""
    eventually(lambda: settled(env, "churn-prod"), timeout=90, what="the rollout to settle")
    fetches = poller_stats(env, "churn").fetches

    def quiet_window() -> bool:
        """Three polls during which neither the registry nor its Deployment changed."""
        versions = resource_versions(env)
        polls = poller_stats(env, "churn").polls
        eventually(
            lambda: poller_stats(env, "churn").polls >= polls + 3,
            timeout=30,
            what="three more polls",
        )
        return resource_versions(env) == versions

    # Pods of the old ReplicaSet may still be terminating: allow the status to catch up first.
    eventually(quiet_window, timeout=90, what="a window of three idle polls without writes")
    # ref listings only, no object download
    assert poller_stats(env, "churn").fetches == fetches
    assert quiet_window()


def poller_stats(env: Env, name: str) -> PollerStats:
    """The shared poller's counters for this registry (the operator runs in this process)."""
    stats = handlers.FEEDS[0].stats_for(f"{env.namespace}/{name}")
    assert stats is not None, f"{name} follows no poller"
    return stats


def resource_versions(env: Env) -> tuple[str, str]:
    found = deployment(env, "churn-prod")
    assert found is not None
    assert found.metadata is not None
    return (
        get_registry(env, "churn")["metadata"]["resourceVersion"],
        str(found.metadata.resource_version),
    )


def test_requested_at_polls_at_once(env: Env, commits: dict[str, str]) -> None:
    patch_registry(env, "churn", {"spec": {"source": {"interval": "1h"}}})
    eventually(lambda: poller_stats(env, "churn").interval == 3600.0, what="the new interval")
    env.registry.tag("churn#prod#4", commits["v2"])
    now = str(time.time())
    patch_registry(env, "churn", {"metadata": {"annotations": {"gitstage.dev/requestedAt": now}}})
    assert eventually(
        lambda: served_commit(env, "churn-prod") == commits["v2"],
        timeout=30,
        what="rollout after requestedAt",
    )
    assert eventually(
        lambda: get_registry(env, "churn")["status"].get("lastHandledReconcileAt") == now,
        what="lastHandledReconcileAt",
    )
    patch_registry(env, "churn", {"spec": {"source": {"interval": "1s"}}})


def test_deprecation_keeps_the_last_version_serving(env: Env, commits: dict[str, str]) -> None:
    env.registry.tag("churn@deprecated", commits["v2"])
    held = eventually(
        lambda: (condition(env, "churn", "Ready") or {}).get("reason") == "Held",
        timeout=60,
        what="Ready=False Held",
    )
    assert held
    assert "deprecated" in (condition(env, "churn", "Ready") or {})["message"]
    assert tools_read(env, "churn") == ("Failed", "Degraded")  # someone must assign a version
    assert served_commit(env, "churn-prod") == commits["v2"]
    assert eventually(lambda: events(env, "ArtifactDeprecated"), what="a Warning event")


def test_wrong_credentials_and_unreachable_servers_are_reported(env: Env) -> None:
    custom().create_namespaced_custom_object(
        GROUP, VERSION, env.namespace, PLURAL, model_registry(env, "badauth", secret="wrong-auth")
    )
    custom().create_namespaced_custom_object(
        GROUP,
        VERSION,
        env.namespace,
        PLURAL,
        model_registry(env, "offline", url="http://127.0.0.1:9/registry.git"),
    )
    stalled = eventually(lambda: condition(env, "badauth", "Stalled"), timeout=60, what="status")
    eventually(
        lambda: (condition(env, "badauth", "Stalled") or {}).get("status") == "True",
        timeout=60,
        what="Stalled=True",
    )
    stalled = condition(env, "badauth", "Stalled") or {}
    assert stalled["reason"] == "AuthenticationFailed"
    assert PASSWORD not in str(get_registry(env, "badauth"))
    eventually(
        lambda: (condition(env, "offline", "Ready") or {}).get("reason") == "SourceUnavailable",
        timeout=60,
        what="SourceUnavailable",
    )
    assert deployment(env, "badauth-prod") is None
    assert deployment(env, "offline-prod") is None
    assert tools_read(env, "badauth") == ("Failed", "Degraded")
    assert tools_read(env, "offline") == ("InProgress", "Progressing")  # retrying


def test_suspend_stops_rollouts(env: Env, commits: dict[str, str]) -> None:
    patch_registry(env, "churn", {"spec": {"suspend": True}})
    eventually(
        lambda: (condition(env, "churn", "Ready") or {}).get("reason") == "Suspended",
        what="Suspended",
    )
    env.registry.tag("churn@v0.0.2#5", commits["v2"])  # re-registering undeprecates
    env.registry.tag("churn#prod#6", commits["v1"])
    now = str(time.time())
    patch_registry(env, "churn", {"metadata": {"annotations": {"gitstage.dev/requestedAt": now}}})
    eventually(
        lambda: get_registry(env, "churn")["status"].get("lastHandledReconcileAt") == now,
        what="the request handled",
    )
    assert served_commit(env, "churn-prod") == commits["v2"]
    patch_registry(env, "churn", {"spec": {"suspend": False}})
    assert eventually(
        lambda: served_commit(env, "churn-prod") == commits["v1"],
        timeout=60,
        what="rollout after resume",
    )


def test_an_emptied_stage_can_scale_to_zero(env: Env, commits: dict[str, str]) -> None:
    body = model_registry(env, "canary")
    binding = body["spec"]["deployments"][0]
    binding.update({"stage": "canary", "onEmptyStage": "ScaleToZero"})
    env.registry.tag("churn#canary#7", commits["v2"])
    custom().create_namespaced_custom_object(GROUP, VERSION, env.namespace, PLURAL, body)
    assert eventually(
        lambda: served_commit(env, "canary-prod") == commits["v2"],
        timeout=60,
        what="canary rollout",
    )
    env.registry.tag("churn#canary!#8", commits["v2"])

    def replicas() -> int | None:
        found = deployment(env, "canary-prod")
        return found.spec.replicas if found is not None and found.spec is not None else None

    eventually(lambda: replicas() == 0, timeout=60, what="scaled to zero")
    assert served_commit(env, "canary-prod") == commits["v2"]  # the last version, not deleted


def test_fields_owned_by_others_survive_a_rollout_and_unknown_names_are_reported(
    env: Env, commits: dict[str, str]
) -> None:
    """Server-side apply leaves an autoscaler's replicas and a kubectl annotation alone; bindings
    to an artifact or stage the registry lacks are held with the reason in status."""
    body = model_registry(env, "shared")
    serving = body["spec"]["deployments"][0]
    del serving["replicas"]  # the autoscaler owns them
    body["spec"]["deployments"] += [
        {**serving, "name": "shared-ghost", "artifact": "ghost"},
        {**serving, "name": "shared-nostage", "stage": "nostage"},
    ]
    custom().create_namespaced_custom_object(GROUP, VERSION, env.namespace, PLURAL, body)
    holder = api_.find_version_in_stage(env.registry.clone, "churn", "prod")
    assert holder is not None
    eventually(lambda: served_commit(env, "shared-prod") == holder.commit, timeout=60, what="v")
    apps = client.AppsV1Api(api())
    apps.patch_namespaced_deployment_scale(
        "shared-prod", env.namespace, {"spec": {"replicas": 3}}, field_manager="autoscaler"
    )
    apps.patch_namespaced_deployment(
        "shared-prod",
        env.namespace,
        {"metadata": {"annotations": {"team.example/owner": "ml-platform"}}},
        field_manager="kubectl-annotate",
    )
    newer = env.registry.commit("weights-shared")
    env.registry.tag("churn@v0.0.7", newer)
    env.registry.tag("churn#prod#9", newer)
    assert eventually(lambda: served_commit(env, "shared-prod") == newer, timeout=60, what="roll")
    found = deployment(env, "shared-prod")
    assert found is not None
    assert found.spec is not None
    assert found.metadata is not None
    assert found.spec.replicas == 3
    assert (found.metadata.annotations or {}).get("team.example/owner") == "ml-platform"

    def held(name: str) -> dict[str, Any]:
        states = get_registry(env, "shared").get("status", {}).get("deployments") or []
        return next((s for s in states if s["name"] == name), {})

    eventually(lambda: held("shared-ghost").get("rollout") == "Held", what="ghost held")
    eventually(lambda: held("shared-nostage").get("rollout") == "Held", what="nostage held")
    assert "artifact 'ghost' is not in the registry" in held("shared-ghost")["message"]
    assert "stage 'nostage'" in held("shared-nostage")["message"]
    assert deployment(env, "shared-ghost") is None
    assert deployment(env, "shared-nostage") is None
    assert eventually(lambda: events(env, "UnknownArtifact"), what="an UnknownArtifact event")
    custom().delete_namespaced_custom_object(GROUP, VERSION, env.namespace, PLURAL, "shared")


def test_an_ssh_source_rolls_out_with_the_key_and_known_hosts_of_its_secret(
    env: Env, commits: dict[str, str]
) -> None:
    key = SshKeyPair.generate()
    private = key.private_openssh.splitlines()[1]
    env.secrets.append(private)
    host = urllib.parse.urlsplit(env.url).hostname or "127.0.0.1"  # pods' fetchers reach it
    with SshGitServer(env.server.root, [key], host=host) as ssh:
        core = client.CoreV1Api(api())
        for name, known_hosts in (("git-ssh", ssh.known_hosts), ("git-ssh-mitm", "")):
            secret = {"identity": key.private_openssh, "known_hosts": known_hosts}
            core.create_namespaced_secret(
                env.namespace,
                client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=secret),
            )
        for name, secret in (("viassh", "git-ssh"), ("mitm", "git-ssh-mitm")):
            body = model_registry(env, name, url=ssh.url("registry.git"), secret=secret)
            custom().create_namespaced_custom_object(GROUP, VERSION, env.namespace, PLURAL, body)
        holder = api_.find_version_in_stage(env.registry.clone, "churn", "prod")
        assert holder is not None
        assert eventually(
            lambda: served_commit(env, "viassh-prod") == holder.commit, timeout=60, what="rollout"
        )
        eventually(
            lambda: (condition(env, "mitm", "Stalled") or {}).get("reason") == "HostKeyUnknown",
            timeout=60,
            what="Stalled for an unknown host key",
        )
        found = deployment(env, "viassh-prod")
        assert found is not None
        assert found.spec is not None
        assert found.spec.template.spec is not None
        [fetcher, *_] = found.spec.template.spec.init_containers or []
        from_secret = {
            e.name: e.value_from.secret_key_ref.key
            for e in fetcher.env or []
            if e.value_from is not None and e.value_from.secret_key_ref is not None
        }
        assert from_secret == {
            "GITSTAGE_GIT_SSH_KEY": "identity",
            "GITSTAGE_GIT_KNOWN_HOSTS": "known_hosts",
        }
        assert private not in str(get_registry(env, "viassh"))
        assert private not in str(get_registry(env, "mitm"))
        for name in ("viassh", "mitm"):
            custom().delete_namespaced_custom_object(GROUP, VERSION, env.namespace, PLURAL, name)


def test_deleting_the_registry_deletes_its_deployments(env: Env) -> None:
    assert deployment(env, "churn-prod") is not None
    custom().delete_namespaced_custom_object(GROUP, VERSION, env.namespace, PLURAL, "churn")
    eventually(lambda: deployment(env, "churn-prod") is None, timeout=60, what="cascade")
