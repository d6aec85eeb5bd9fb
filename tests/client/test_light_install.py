"""`pip install gitstage` without the operator extra: the client works end to end.

The environment is built from what the base dependencies really are: a directory holding only
the import packages of `[project] dependencies` and their own requirements, found through
importlib.metadata, on the path of an interpreter started without site-packages (`-S`). So kopf,
kubernetes, aiohttp, cryptography and prometheus_client cannot be imported, whatever this venv has.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest

from tests.client.conftest import MODEL_PICKLE, Served

ROOT = Path(__file__).resolve().parents[2]
OPERATOR_ONLY = ("kopf", "kubernetes", "aiohttp", "cryptography", "prometheus_client", "urllib3")


def _name(spec: str) -> str:
    return re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0]


def _closure(names: list[str]) -> set[str]:
    """The distributions `names` need, transitively (requirements of extras skipped)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        seen.add(name)
        for requirement in dist.requires or []:
            if ";" in requirement and "extra ==" in requirement:
                continue
            todo.append(_name(requirement))
    return seen


def _client_site(target: Path) -> Path:
    base = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    target.mkdir()
    for name in _closure([_name(spec) for spec in base]):
        dist = distribution(name)
        for top in {Path(str(f)).parts[0] for f in dist.files or []}:
            if top.endswith((".dist-info", ".egg-info")) or top in ("..", "__pycache__"):
                continue
            source = Path(str(dist.locate_file(top)))
            if source.exists() and not (target / top).exists():
                (target / top).symlink_to(source)
    (target / "gitstage").symlink_to(ROOT / "operator" / "gitstage")
    return target


@pytest.fixture
def client_python(tmp_path: Path) -> list[str]:
    site = _client_site(tmp_path / "client-site")
    boot = f"import sys; sys.path[:0] = [{str(site)!r}]; import runpy; "
    # -S: no site-packages; -E: no PYTHONPATH (the served env carries this venv's path).
    return [
        sys.executable,
        "-S",
        "-E",
        "-c",
        boot + "sys.argv[0] = 'gitstage'; runpy.run_module('gitstage', run_name='__main__')",
    ]


def test_operator_dependencies_are_an_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {_name(spec).replace("-", "_") for spec in project["dependencies"]}
    extra = {_name(spec).replace("-", "_") for spec in project["optional-dependencies"]["operator"]}
    assert not base & set(OPERATOR_ONLY)
    assert extra == set(OPERATOR_ONLY)
    dockerfile = (ROOT / "Dockerfile").read_text()
    extras = re.search(r"^ARG GITSTAGE_EXTRAS=(\S+)$", dockerfile, re.MULTILINE)
    assert extras is not None
    assert "operator" in extras.group(1).split(",")  # the image runs the operator
    assert '"gitstage[${GITSTAGE_EXTRAS}]"' in dockerfile


def test_a_client_only_environment_reads_writes_fetches_and_loads(
    served: Served, client_python: list[str]
) -> None:
    served.new_repo("registry", {"artifacts.yaml": "m:\n  path: m.pkl\n", "m.pkl": MODEL_PICKLE})

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*client_python, *args],
            env=served.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,  # `operator` with its dependencies importable would run, not return
        )

    probe = subprocess.run(
        [*client_python[:3], "-c", client_python[4].split("import runpy")[0] + "import kopf"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "No module named 'kopf'" in probe.stderr
    url = served.url()
    assert run("register", "m", "--version", "v1.0.0", "-r", url).returncode == 0
    assert run("assign", "m", "--version", "v1.0.0", "--stage", "prod", "-r", url).returncode == 0
    assert run("which", "m", "prod", "-r", url).stdout == "v1.0.0\n"
    out = served.tmp / "m.pkl"
    fetched = run("fetch", "m", "--stage", "prod", "-r", url, "-o", str(out))
    assert fetched.returncode == 0, fetched.stderr
    assert out.read_bytes() == MODEL_PICKLE
    load = (
        "import gitstage.api as api, sys; "
        f"print(api.load('m', repo={url!r}, stage='prod')); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{OPERATOR_ONLY!r}))"
    )
    loaded = subprocess.run(
        [*client_python[:3], "-c", client_python[4].split("import runpy")[0] + load],
        env=served.env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert loaded.stdout == "{'weights': [1, 2, 3]}\n[]\n", loaded.stderr
    operator = run("operator")
    assert (operator.returncode, operator.stderr) == (
        2,
        "gitstage: error: gitstage operator needs its extra: pip install 'gitstage[operator]'\n",
    )
    ui = run("ui")
    assert (ui.returncode, ui.stderr) == (
        2,
        "gitstage: error: gitstage ui needs its extra: pip install 'gitstage[ui]'\n",
    )
