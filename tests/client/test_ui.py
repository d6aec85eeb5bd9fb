"""`gitstage ui` over URLs: two repositories served over loopback HTTP with Basic auth, read
through the persistent mirror like `gitstage show -r URL`, aggregated on one page; a push shows
on the next refresh; no credential on any page."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.conftest import PASSWORD, USER, Served
from tests.support.ports import reserve_port

INDEX = "churn:\n  type: model\n  path: churn.pkl\n"


def page(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
            return str(response.read().decode())
    except (urllib.error.URLError, OSError):
        return None


def eventually_page(url: str, contains: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = page(url)
        if last is not None and contains in last:
            return last
        time.sleep(0.2)  # polling interval between reads of the page
    raise AssertionError(f"{contains!r} not on {url} within {timeout}s (last: {last!r:.300})")


@pytest.fixture
def two_repositories(served: Served) -> tuple[Path, Path]:
    first = served.new_repo("models", {"artifacts.yaml": INDEX, "churn.pkl": "v1"})
    served.git(first, "tag", "-a", "churn@v1.0.0", "-m", "first")
    served.git(first, "push", "-q", "origin", "--tags")
    second = served.new_repo("nlp", {"artifacts.yaml": "bert:\n  type: model\n"})
    served.git(second, "tag", "-a", "bert@v0.3.0", "-m", "bert")
    served.git(second, "tag", "-a", "bert#prod#1", "-m", "bert to prod")
    served.git(second, "push", "-q", "origin", "--tags")
    return first, second


@pytest.fixture
def ui(served: Served, two_repositories: tuple[Path, Path]) -> Iterator[str]:
    port = reserve_port()
    command = [sys.executable, "-m", "gitstage", "ui", "--port", str(port), "--interval", "0.5"]
    # One URL carries its credentials, the other takes them from GITSTAGE_GIT_*.
    command += ["-r", served.authed("models.git"), "-r", served.url("nlp.git")]
    process = subprocess.Popen(
        command, env=served.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        eventually_page(url, "Models")
        yield url
    finally:
        process.terminate()
        out, err = process.communicate(timeout=10)
        assert PASSWORD not in out + err


def test_repositories_read_through_the_mirror_share_one_page(
    served: Served, two_repositories: tuple[Path, Path], ui: str
) -> None:
    models = eventually_page(ui, 'data-artifact="bert"')
    assert "2 artifacts in 2 repositories." in models
    assert 'data-artifact="churn"' in models
    assert served.url("models.git") in models  # shown without its userinfo
    assert PASSWORD not in models
    assert f"{USER}:" not in models
    first, _ = two_repositories
    served.git(first, "tag", "-a", "churn#prod#1", "-m", "to prod", "churn@v1.0.0")
    served.git(first, "push", "-q", "origin", "--tags")
    key = urllib.parse.urlsplit(served.url("models.git"))
    repository = f"{key.hostname}:{key.port}/models"
    model = eventually_page(
        f"{ui}model?repo={urllib.parse.quote(repository)}&artifact=churn", 'data-tag="churn#prod#1"'
    )
    assert PASSWORD not in model
    mirrors = Path(served.env["GITSTAGE_CACHE_DIR"]) / "mirrors"
    assert any(mirrors.iterdir())  # read through the persistent mirror, not a clone
