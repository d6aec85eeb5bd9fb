"""The operator under a promotion policy, end to end: prod tags must be signed with the release
SSH key and the version must have been in staging. A forged unsigned prod tag pushed with plain
git is never rolled out: the signed version keeps serving, the ModelRegistry says which tag
broke which rule (in `gitstage check`'s words), and a Warning event is posted."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from kopf.testing import KopfRunner
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gitstage.cli.main import cli
from gitstage.dev.git_server import GitHttpServer
from tests.conftest import Kube
from tests.e2e.kubeutil import KOPF_ARGS, api, eventually, serving_template
from tests.support.git import WorkingClone, init_served_bare

pytestmark = pytest.mark.e2e

GROUP, VERSION, PLURAL = "gitstage.dev", "v1alpha1", "modelregistries"
NAME = "policed"
POLICY = """\
rules:
  prod:
    requires: [staging]
    signed_by: [release@example.com]
"""
RULES = "in .gitstage/policy.yaml"


@dataclass
class Clone(WorkingClone):
    """A working clone of the served registry; every tag is dated after the previous one."""

    signing_key: Path
    clock: int = 1_750_000_000

    def commit(self, files: dict[str, str]) -> str:
        return self.commit_and_push(files, "update")

    def tag(self, name: str, commit: str, *, signed: bool = False) -> None:
        """`git tag -a`, or `git tag -s` with the release SSH key; then push it."""
        self.clock += 10
        self.tag_and_push(name, commit, date=self.clock, signed=signed)

    def release(
        self, version: str, model: str, *, staging: bool = True, signed: bool = True
    ) -> str:
        """Commit a model, register it, (stage it), and assign prod."""
        commit = self.commit({"models/churn.txt": model})
        self.tag(f"churn@{version}", commit)
        if staging:
            self.tag(f"churn#staging#{self.clock}", commit)
        self.tag(f"churn#prod#{self.clock}", commit, signed=signed)
        return commit

    def prod_tags(self) -> list[str]:
        return sorted(self.git("tag", "--list", "churn#prod#*").split(), key=self._counter)

    @staticmethod
    def _counter(tag: str) -> int:
        return int(tag.rsplit("#", 1)[1])


@dataclass
class Env:
    clone: Clone
    namespace: str


def ssh_key(path: Path) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "release", "-f", str(path)],
        check=True,
    )
    return path


@pytest.fixture(scope="module")
def env(crd: Kube, mirror_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("git")
    bare = root / "registry.git"
    init_served_bare(bare)
    key = ssh_key(root / "release")
    namespace = f"policy-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api())
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    with GitHttpServer(root, host=crd.node_address) as server:
        url = server.url("registry.git")
        path = root / "clone"
        subprocess.run(["git", "clone", "-q", url, str(path)], check=True, capture_output=True)
        clone = Clone(path, key)
        clone.git("checkout", "-q", "-b", "main")
        clone.git("config", "gpg.format", "ssh")
        clone.git("config", "user.signingkey", str(key))
        clone.commit(
            {
                "artifacts.yaml": "churn:\n  type: model\n  path: models/churn.txt\n",
                ".gitstage/policy.yaml": POLICY,
                ".gitstage/allowed_signers": "release@example.com "
                + key.with_suffix(".pub").read_text(),
            }
        )
        with KopfRunner(KOPF_ARGS, timeout=60) as runner:
            yield Env(clone, namespace)
        assert runner.exit_code == 0, runner.output
        core.delete_namespace(namespace)


def custom() -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api())


def create_registry(env: Env) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelRegistry",
        "metadata": {"name": NAME},
        "spec": {
            "source": {"url": env.clone.git("remote", "get-url", "origin"), "interval": "1s"},
            "deployments": [
                {
                    "name": "churn-prod",
                    "artifact": "churn",
                    "stage": "prod",
                    "replicas": 1,
                    "template": serving_template(),
                }
            ],
        },
    }
    custom().create_namespaced_custom_object(GROUP, VERSION, env.namespace, PLURAL, body)


def ready(env: Env) -> dict[str, Any]:
    found = custom().get_namespaced_custom_object(GROUP, VERSION, env.namespace, PLURAL, NAME)
    conditions = (found.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == "Ready"), {})


def served_commit(env: Env) -> str | None:
    try:
        found = client.AppsV1Api(api()).read_namespaced_deployment("churn-prod", env.namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    template = found.spec.template.metadata if found.spec else None
    return (template.annotations or {}).get("gitstage.dev/commit") if template else None


def warnings(env: Env) -> list[str]:
    found = client.CoreV1Api(api()).list_namespaced_event(env.namespace)
    return [
        e.message or ""
        for e in found.items
        if e.reason == "PolicyViolation"
        and e.type == "Warning"
        and e.involved_object.kind == "ModelRegistry"
        and e.involved_object.name == NAME
    ]


def check(env: Env) -> list[str]:
    """`gitstage check` on the clone (every tag is local there): its problem lines."""
    result = CliRunner().invoke(cli, ["check", "-r", str(env.clone.path)])
    return result.stdout.splitlines()


@pytest.fixture(scope="module")
def signed(env: Env) -> str:
    """v0.0.1 through staging to prod, with a signed prod tag; the registry created."""
    commit = env.clone.release("v0.0.1", "weights-1")
    assert check(env) == []
    create_registry(env)
    return commit


def test_a_signed_prod_assignment_rolls_out(env: Env, signed: str) -> None:
    assert eventually(lambda: served_commit(env) == signed, timeout=90, what="rollout")
    eventually(lambda: ready(env).get("status") == "True", timeout=60, what="Ready=True")


def test_a_forged_unsigned_prod_tag_is_not_rolled_out(env: Env, signed: str) -> None:
    eventually(lambda: served_commit(env) == signed, timeout=90, what="the signed rollout")
    forged_commit = env.clone.release("v0.0.2", "weights-2-forged", signed=False)
    forged = env.clone.prod_tags()[-1]
    line = (
        f"tag {forged}: not signed, but 'prod' requires a signature by release@example.com "
        f"(rules.prod.signed_by {RULES})"
    )
    assert check(env) == [line]
    condition = eventually(
        lambda: ready(env) if ready(env).get("reason") == "PolicyViolation" else None,
        timeout=60,
        what="Ready=False PolicyViolation",
    )
    assert condition["status"] == "False"
    assert condition["message"] == f"churn-prod: {line}; serving v0.0.1 ({signed_tag(env)}) instead"
    assert served_commit(env) == signed != forged_commit
    messages = eventually(lambda: warnings(env), timeout=30, what="a PolicyViolation Warning")
    assert messages == [condition["message"]]


def test_a_signed_prod_tag_that_skipped_staging_is_not_rolled_out(env: Env, signed: str) -> None:
    skipped = env.clone.release("v0.0.3", "weights-3", staging=False)
    tag = env.clone.prod_tags()[-1]
    line = (
        f"tag {tag}: version v0.0.3 of churn was never in stage 'staging' before its assignment "
        f"to 'prod' (rules.prod.requires {RULES})"
    )
    assert line in check(env)
    eventually(
        lambda: ready(env).get("message", "").startswith(f"churn-prod: {line}; "),
        timeout=60,
        what="the prior-stage violation in Ready",
    )
    assert served_commit(env) == signed != skipped
    eventually(
        lambda: any(m.startswith(f"churn-prod: {line}; ") for m in warnings(env)),
        timeout=30,
        what="a Warning naming the skipped stage",
    )


def test_a_compliant_promotion_rolls_forward_again(env: Env, signed: str) -> None:
    commit = env.clone.release("v0.0.4", "weights-4")
    assert eventually(lambda: served_commit(env) == commit, timeout=60, what="roll forward")
    eventually(lambda: ready(env).get("status") == "True", timeout=90, what="Ready=True")


def signed_tag(env: Env) -> str:
    return env.clone.prod_tags()[0]


def test_an_invalid_policy_keeps_the_last_good_state(env: Env) -> None:
    serving = served_commit(env)
    env.clone.commit({".gitstage/policy.yaml": "rules: {prod: {requires: [prod]}}\n"})
    eventually(
        lambda: ready(env).get("reason") == "InvalidPolicy", timeout=60, what="InvalidPolicy"
    )
    assert "circular requires: prod -> prod" in ready(env)["message"]
    assert served_commit(env) == serving
    env.clone.commit({".gitstage/policy.yaml": POLICY})
    eventually(lambda: ready(env).get("status") == "True", timeout=60, what="Ready=True again")
