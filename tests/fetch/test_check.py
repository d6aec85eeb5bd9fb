"""`gitstage check`: every kind of problem, found in a scratch registry, one line each."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from gitstage.cli.main import cli
from tests.fetch.conftest import LFS_POINTER
from tests.support.scratch import ScratchRepo, When

DVC3_OUT = "outs:\n- md5: {md5}\n  size: 3\n  hash: md5\n  path: {name}\n"
DVC2_OUT = "outs:\n- md5: {md5}\n  size: 3\n  path: {name}\n"
MD5 = "0123456789abcdef0123456789abcdef"


def check(path: Path) -> Result:
    return CliRunner().invoke(cli, ["check", "--repo", str(path)], catch_exceptions=False)


def index(**entries: dict[str, object]) -> str:
    return json.dumps(entries)


def link(**fields: str) -> dict[str, object]:
    return {"custom": {"gitstage": {"link": fields}}}


def test_every_kind_of_problem_is_reported_once(tmp_path: Path) -> None:
    repo = ScratchRepo(tmp_path)
    entries: dict[str, dict[str, object]] = {
        "m": {"path": "models/m.bin"},
        "d": {"path": "data/x"},
        "o": {"path": "data/old"},
        "u": {"path": "../up"},
        "l": {"path": "lfs.bin"},
    }
    early = repo.commit({"artifacts.yaml": index(**entries)}, When(0))
    late = repo.commit(
        {
            "models/m.bin": "model",
            ".dvc/config": "[core]\n    remote = s\n['remote \"s\"']\n    url = /tmp/r\n",
            "data/x.dvc": DVC3_OUT.format(md5=MD5, name="x"),
            "data/old.dvc": DVC2_OUT.format(md5=MD5, name="old"),
            "lfs.bin": LFS_POINTER,
            "artifacts.yaml": index(
                **entries,
                good=link(repo="https://git.example/r.git", rev="a" * 40),
                norev=link(repo="https://git.example/r.git"),
                badrev=link(repo="https://git.example/r.git", rev="--upload-pack=x"),
            ),
        },
        When(10),
    )
    for name, target in [
        ("m@v0.9.0", early),
        ("m@v1.0.0", late),
        ("d@v1.0.0", late),
        ("o@v1.0.0", late),
        ("u@v1.0.0", late),
        ("l@v1.0.0", late),
        ("virtual@v1.0.0", late),
        ("m#prod#1", late),
        ("m@1.0.0", late),
        ("m#prod##1", late),
        ("m@created", late),
        ("v1.0.0", late),
    ]:
        repo.tag(name, target, When(20))
    repo.lightweight("m#prod#3", late)

    result = check(tmp_path)

    assert result.exit_code == 1
    assert sorted(result.stdout.splitlines()) == sorted(
        [
            "artifacts.yaml at HEAD: artifact 'norev': custom.gitstage.link: rev: required",
            "artifacts.yaml at HEAD: artifact 'badrev': custom.gitstage.link: rev: "
            "'rev' must be a commit SHA or a tag/branch name",
            f"tag m@v0.9.0: models/m.bin does not exist (models is missing) at commit {early[:12]}",
            "tag o@v1.0.0: data/old is tracked in DVC 2 format (md5-dos2unix) by data/old.dvc;"
            f" re-add it with DVC 3 at commit {late[:12]}",
            "tag u@v1.0.0: path of artifact 'u' '../up' escapes with '..'",
            "tag l@v1.0.0: lfs.bin is a git-lfs pointer (sha256:4d7a214614ab2935c943f9e0ff69d22eadb"
            "b8f32b1258daaa5e2ca24d17e2393); git-lfs content is not fetched by gitstage, track the"
            f" artifact with DVC or commit it to git at commit {late[:12]}",
            "tag m@1.0.0: does not match GTO's tag grammar, so GTO ignores it",
            "tag m#prod##1: does not match GTO's tag grammar, so GTO ignores it",
            "tag m@created: the reserved '@created' form makes every GTO command fail",
            "tag m#prod#3: lightweight tag: GTO reads only annotated tags",
        ]
    )
    assert "13 tags, 7 registered versions checked" in result.stderr


def test_invalid_names_in_artifacts_yaml(tmp_path: Path) -> None:
    repo = ScratchRepo(tmp_path)
    repo.commit({"artifacts.yaml": index(**{"bad name": {"path": "x"}})})
    result = check(tmp_path)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "artifacts.yaml at HEAD: artifacts.yaml at HEAD doesn't conform to GTO format:"
        " invalid artifact name 'bad name'"
    ]


def test_a_clean_registry_passes(tmp_path: Path) -> None:
    repo = ScratchRepo(tmp_path)
    commit = repo.commit({"artifacts.yaml": index(m={"path": "m.bin"}), "m.bin": "x"})
    repo.tag("m@v1.0.0", commit, When(1))
    repo.tag("m#prod#1", commit, When(2))
    result = check(tmp_path)
    assert result.exit_code == 0, result.stdout
    assert result.stdout == ""
    assert "0 problems (2 tags, 1 registered versions checked)" in result.stderr


def test_not_a_repository(tmp_path: Path) -> None:
    result = check(tmp_path)
    assert result.exit_code == 2
    assert result.stderr.startswith("gitstage: error: not a git repository")
    assert len(result.stderr.splitlines()) == 1


def test_every_tag_on_a_version_that_is_no_commit_is_named(tmp_path: Path) -> None:
    repo = ScratchRepo(tmp_path)
    commit = repo.commit({"artifacts.yaml": index(m={"path": "m.bin"}), "m.bin": "x"})
    blob = str(repo.repo.create_blob(b"weights"))
    repo.tag("m@v1.0.0", commit, When(1))
    repo.tag("m#prod#1", blob, When(2))  # a stage tag makes its target a version
    repo.tag("m@v1.0.0!#2", blob, When(3))
    result = check(tmp_path)
    assert result.exit_code == 1
    named = [line for line in result.stdout.splitlines() if line.startswith("tag ")]
    assert named == [
        "tag m#prod#1: does not point to a commit",
        "tag m@v1.0.0!#2: does not point to a commit",
    ]
