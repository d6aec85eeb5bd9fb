"""Every third-party package the operator imports is declared in pyproject's dependencies (or,
for an optional import, in an extra other than `test`): a package that is only present in a
developer's venv (pulled in by another one) fails CI's clean install, or worse, the image."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / "operator" / "gitstage"


def top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    specs = project["dependencies"] + [s for name, v in extras.items() if name != "test" for s in v]
    return {normalized(re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0]) for spec in specs}


def test_every_third_party_import_of_the_operator_is_a_declared_dependency() -> None:
    imported: set[str] = set()
    for path in SOURCES.rglob("*.py"):
        imported |= top_level_imports(path)
    third_party = imported - set(sys.stdlib_module_names) - {"gitstage", "__future__"}
    distributions = packages_distributions()
    undeclared = {
        name: distributions.get(name, ["not installed"])
        for name in sorted(third_party)
        if not {normalized(d) for d in distributions.get(name, [name])} & declared()
        and normalized(name) not in declared()
    }
    assert third_party, "the scan found no third-party import at all"
    assert undeclared == {}, f"imported but not in [project] dependencies: {undeclared}"
