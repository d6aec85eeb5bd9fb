"""`gitstage ui` in headless Chromium: the command serves a repository on this machine, and the
browser shows what a person would see: the models table, a stage tag appearing without a
reload, and the audit trail in `gitstage history`'s order; readable at a phone's width."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import browser
from tests.support.git import run_git
from tests.support.ports import reserve_port

pytestmark = pytest.mark.browser

INDEX = (
    "churn:\n  type: model\n  path: models/churn.pkl\n"
    "  description: Predicts which customers leave\n  labels: [tabular, weekly]\n"
    "fraud:\n  type: model\n  path: models/fraud.onnx\n"
)


@dataclass
class Repo:
    path: Path
    clock: int

    def git(self, *args: str) -> str:
        return run_git(self.path, *args, date=self.clock)

    def commit(self, files: dict[str, str]) -> str:
        self.clock += 10
        for name, text in files.items():
            (self.path / name).parent.mkdir(parents=True, exist_ok=True)
            (self.path / name).write_text(text)
        self.git("add", "-A")
        self.git("commit", "-qm", "train")
        return self.git("rev-parse", "HEAD")

    def tag(self, name: str, rev: str, message: str) -> None:
        self.clock += 10
        self.git("tag", "-a", name, "-m", message, rev)


@dataclass
class Ui:
    url: str
    repo: Repo
    v2: str


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback
            return True
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ui]:
    path = tmp_path_factory.mktemp("ui") / "registry"
    run_git(path.parent, "init", "-q", "-b", "main", str(path))
    repo = Repo(path, int(time.time()) - 3600)
    v1 = repo.commit({"artifacts.yaml": INDEX, "models/churn.pkl": "v1"})
    repo.tag("churn@v1.0.0", v1, "October data")
    repo.tag("churn#staging#1", v1, "looks good in staging")
    repo.tag("churn#prod#1", v1, "ship it")
    repo.tag("fraud@v0.1.0", v1, "first fraud model")
    v2 = repo.commit({"models/churn.pkl": "v2"})
    repo.tag("churn@v2.0.0", v2, "November data")
    repo.tag("churn#staging#2", v2, "v2 to staging")
    port = reserve_port()
    command = [sys.executable, "-m", "gitstage", "ui", "-r", str(path), "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--interval", "0.5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 30
        while not answers(url):
            assert process.poll() is None, process.communicate()[1].decode()
            assert time.monotonic() < deadline, "gitstage ui did not answer within 30s"
            time.sleep(0.2)  # polling interval until the server listens
        yield Ui(url, repo, v2)
    finally:
        process.terminate()
        process.wait(timeout=10)


def cells(driver: Any, artifact: str) -> dict[str, str]:
    """The models table's row of `artifact`: column label -> text."""
    return browser.row_cells(
        driver.find_element("css selector", f'#models tr[data-artifact="{artifact}"]')
    )


def test_the_models_table(ui: Ui, chromium: Any) -> None:
    chromium.get(ui.url)
    assert chromium.title == "Models · gitstage"
    churn, fraud = cells(chromium, "churn"), cells(chromium, "fraud")
    assert churn["Latest"] == "v2.0.0"
    assert browser.stage_version(chromium, "churn", "prod") == "v1.0.0"
    assert browser.stage_version(chromium, "churn", "staging") == "v2.0.0"
    assert fraud["Latest"] == "v0.1.0"
    assert fraud["Stages"] == "—"
    assert "Deployments" not in churn  # no cluster, no cluster column
    headings = [th.text for th in chromium.find_elements("css selector", "#models th")]
    assert headings == ["Artifact", "Repository", "Latest", "Stages"]
    assert chromium.find_elements("link text", "Rollouts") == []
    browser.screenshot(chromium, "ui-models")


def test_a_pushed_stage_tag_appears_without_a_reload(ui: Ui, chromium: Any) -> None:
    chromium.get(ui.url)
    assert browser.stage_version(chromium, "churn", "prod") == "v1.0.0"
    chromium.execute_script("window.__notReloaded = true;")
    ui.repo.tag("churn#prod#2", ui.v2, "promote November")
    browser.until(
        chromium,
        lambda d: browser.stage_version(d, "churn", "prod") == "v2.0.0",
        "churn#prod at v2.0.0",
    )
    assert chromium.execute_script("return window.__notReloaded === true;")
    status = chromium.find_element("id", "live-status").text
    assert status.startswith("updated")


def test_the_audit_trail_is_in_gitstage_history_order(ui: Ui, chromium: Any) -> None:
    chromium.get(ui.url)
    chromium.find_element("link text", "churn").click()
    browser.until(chromium, lambda d: d.find_elements("id", "timeline"), "the audit trail")
    rows = chromium.find_elements("css selector", "#timeline tbody tr")
    shown = [row.get_attribute("data-tag") for row in rows]
    history = subprocess.run(
        [sys.executable, "-m", "gitstage", "history", "churn", "--json", "-r", str(ui.repo.path)],
        capture_output=True,
        check=True,
        text=True,
    )
    assert shown == [event["ref"] for event in json.loads(history.stdout)]
    first = browser.row_cells(rows[-1])
    assert (first["Event"], first["Version"], first["By"]) == ("registration", "v1.0.0", "ds")
    assert first["Message"] == "October data"
    assert first["Signature"] == "unsigned"
    about = chromium.find_element("css selector", "dl.description").text
    assert "Predicts which customers leave" in about
    assert "tabular, weekly" in about
    browser.screenshot(chromium, "ui-model")


def test_readable_at_a_phone_width(ui: Ui, chromium: Any) -> None:
    browser.resize(chromium, browser.PHONE)
    try:
        chromium.get(ui.url)
        assert browser.sideways_overflow(chromium) <= 0  # nothing to scroll sideways
        label = chromium.execute_script(
            "return getComputedStyle(document.querySelector('#models td'), '::before').content;"
        )
        assert label == '"Artifact"'  # each cell says which column it is
        browser.screenshot(chromium, "ui-models-phone")
    finally:
        browser.resize(chromium, browser.LAPTOP)
