"""The operator's dashboard in headless Chromium, end to end: the operator in-process with its
dashboard on a loopback port, a ModelRegistry following a repository served over smart HTTP
with basic auth, and a data scientist's pushes. The browser sees the models table with the
Deployment's badge, a pushed stage tag roll out without a reload, the rollouts page, and the
audit trail in `gitstage history`'s order; never the repository's credentials.

Works on the session's real node (pods fetch and serve) and on a KWOK cluster given with
--kubeconfig (pods are reported ready without running): the badges follow the Deployment's
status either way. With $GITSTAGE_SCREENSHOTS set it saves the README's screenshots.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kopf.testing import KopfRunner
from kubernetes import client

from gitstage.dev.git_server import BasicAuth, GitHttpServer
from gitstage.operator import handlers
from tests.conftest import Kube
from tests.e2e.kubeutil import KOPF_ARGS, api, eventually, namespace_with_git_secret
from tests.e2e.test_operator import GROUP, PLURAL, VERSION, Registry, model_registry
from tests.support import browser
from tests.support.browser import chromium_fixture
from tests.support.git import init_served_bare

__all__ = ["chromium_fixture"]
pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PASSWORD = "dash-pw-" + uuid.uuid4().hex[:8]
NAME = "churn"
INDEX = (
    "churn:\n  type: model\n  path: models/churn.txt\n"
    "  description: Predicts which customers leave\n  labels: [tabular, weekly]\n"
    "fraud:\n  type: model\n  path: models/fraud.txt\n"
)


@dataclass
class Env:
    registry: Registry
    namespace: str
    url: str  # the dashboard


def dashboard_url() -> str | None:
    endpoint = handlers.ENDPOINTS.get("dashboard")
    return f"http://127.0.0.1:{endpoint.port}/" if endpoint else None


@pytest.fixture(scope="module")
def env(crd: Kube, mirror_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("dash-git")
    init_served_bare(root / "registry.git")
    namespace = namespace_with_git_secret("dash", "alice", PASSWORD)
    settings = {
        "GITSTAGE_DASHBOARD_PORT": "0",
        "GITSTAGE_DASHBOARD_ADDRESS": "127.0.0.1",
        # Only this module's namespace: the session's cluster holds other tests' registries.
        "GITSTAGE_DASHBOARD_NAMESPACES": namespace,
    }
    try:
        with (
            pytest.MonkeyPatch.context() as patch,
            GitHttpServer(root, auth=BasicAuth("alice", PASSWORD), host=crd.node_address) as server,
        ):
            for key, value in settings.items():
                patch.setenv(key, value)
            url = server.url("registry.git")
            registry = clone(url, root / "clone")
            v1 = registry.commit("weights of October")
            registry.tag("churn@v1.0.0", v1)
            registry.tag("churn#prod#1", v1)
            registry.tag("fraud@v0.1.0", v1)
            with KopfRunner(KOPF_ARGS, timeout=60) as runner:
                page = eventually(dashboard_url, what="the dashboard listener")
                create(Env(registry, namespace, page), NAME, url, "churn", "prod")
                # Nobody holds fraud#staging: its Deployment is held, with the reason.
                create(Env(registry, namespace, page), "fraud", url, "fraud", "staging")
                yield Env(registry, namespace, page)
            assert PASSWORD not in runner.output
    finally:
        client.CoreV1Api(api()).delete_namespace(namespace)


def create(env: Env, name: str, url: str, artifact: str, stage: str) -> None:
    body = model_registry(env, name, url=url)
    binding = body["spec"]["deployments"][0]
    binding.update(replicas=1, artifact=artifact, stage=stage, name=f"{artifact}-{stage}")
    client.CustomObjectsApi(api()).create_namespaced_custom_object(
        GROUP, VERSION, env.namespace, PLURAL, body
    )


def clone(url: str, path: Path) -> Registry:
    authed = url.replace("http://", f"http://alice:{PASSWORD}@")
    subprocess.run(["git", "clone", "-q", authed, str(path)], check=True, capture_output=True)
    registry = Registry(path, url)
    registry.git("checkout", "-q", "-b", "main")
    (path / "artifacts.yaml").write_text(INDEX)
    return registry


def badge(driver: Any, artifact: str) -> tuple[str, str]:
    """(kind, text) of the first Deployment badge on the artifact's row."""
    found = driver.find_elements(
        "css selector", f'#models tr[data-artifact="{artifact}"] li[data-badge]'
    )
    if not found:
        return "", ""
    return str(found[0].get_attribute("data-badge")), str(found[0].text)


def test_the_models_table_shows_what_serves_where(env: Env, chromium: Any) -> None:
    chromium.get(env.url)
    browser.until(
        chromium,
        lambda d: badge(d, "churn")[0] == "serving",
        "churn's Deployment serving",
        timeout=120,
    )
    _kind, text = badge(chromium, "churn")
    assert text.startswith("SERVING v1.0.0")  # the kind is set in capitals by the stylesheet
    assert f"{env.namespace}/{NAME}/churn-prod" in text
    assert browser.stage_version(chromium, "churn", "prod") == "v1.0.0"
    browser.until(chromium, lambda d: badge(d, "fraud")[0] == "held", "fraud's Deployment held")
    assert "no version of 'fraud' is in stage 'staging'" in badge(chromium, "fraud")[1]
    assert chromium.find_element("css selector", "#live .summary").text == (
        "2 artifacts in 1 repository, 2 ModelRegistries."
    )
    headings = [th.text for th in chromium.find_elements("css selector", "#models th")]
    assert headings == ["Artifact", "Repository", "Latest", "Stages", "Deployments"]
    source = chromium.page_source
    assert PASSWORD not in source
    assert "alice" not in source
    browser.screenshot(chromium, "models")


def test_a_pushed_stage_tag_rolls_out_on_the_page_without_a_reload(env: Env, chromium: Any) -> None:
    chromium.get(env.url)
    assert browser.stage_version(chromium, "churn", "prod") == "v1.0.0"
    chromium.execute_script("window.__notReloaded = true;")
    v2 = env.registry.commit("weights of November")
    env.registry.tag("churn@v2.0.0", v2)
    env.registry.tag("churn#prod#2", v2)
    browser.until(
        chromium,
        lambda d: browser.stage_version(d, "churn", "prod") == "v2.0.0",
        "churn#prod at v2.0.0",
    )
    browser.until(
        chromium,
        lambda d: badge(d, "churn")[0] == "serving" and "v2.0.0" in badge(d, "churn")[1],
        "the Deployment serving v2.0.0",
        timeout=120,
    )
    assert chromium.execute_script("return window.__notReloaded === true;")


def test_the_rollouts_page_shows_desired_observed_and_events(env: Env, chromium: Any) -> None:
    chromium.get(env.url + "rollouts")
    section = f'section[data-registry="{env.namespace}/{NAME}"]'
    row = chromium.find_element("css selector", f'{section} tr[data-deployment="churn-prod"]')
    cells = browser.row_cells(row)
    assert cells["Serves"] == "churn#prod"
    assert cells["Desired"].startswith("v2.0.0")
    assert cells["Observed"].startswith("v2.0.0")
    assert cells["Ready"] == "1/1"
    reasons = [
        tr.get_attribute("data-reason")
        for tr in chromium.find_elements("css selector", f"{section} tr[data-reason]")
    ]
    assert reasons[:2] == ["RollingOut", "Created"]  # newest first
    assert PASSWORD not in chromium.page_source
    browser.screenshot(chromium, "rollouts")


def test_the_audit_trail_is_in_gitstage_history_order(env: Env, chromium: Any) -> None:
    chromium.get(env.url)
    chromium.find_element("link text", "churn").click()
    browser.until(chromium, lambda d: d.find_elements("id", "timeline"), "the audit trail")
    shown = [
        tr.get_attribute("data-tag")
        for tr in chromium.find_elements("css selector", "#timeline tbody tr")
    ]
    history = subprocess.run(
        [
            sys.executable,
            "-m",
            "gitstage",
            "history",
            "churn",
            "--json",
            "-r",
            str(env.registry.path),
        ],
        capture_output=True,
        check=True,
        text=True,
    )
    assert shown == [event["ref"] for event in json.loads(history.stdout)]
    assert shown[0] == "churn#prod#2"
    deployments = chromium.find_element("css selector", "section[aria-labelledby=deployments]")
    assert "v2.0.0" in deployments.text
    browser.screenshot(chromium, "model")


def test_readable_at_a_phone_width(env: Env, chromium: Any) -> None:
    browser.resize(chromium, browser.PHONE)
    try:
        chromium.get(env.url)
        assert browser.sideways_overflow(chromium) <= 0  # long URLs wrap on a phone
        browser.screenshot(chromium, "models-phone")
    finally:
        browser.resize(chromium, browser.LAPTOP)
