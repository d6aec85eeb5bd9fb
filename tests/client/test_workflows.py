"""The seed's workflows, typed as a user types them, against a registry served over HTTP;
each answer is compared with the real gto reading a fresh clone where gto has the command."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from gitstage import api
from gitstage.loading import UnsignedPromotionError
from tests.client.conftest import Served

MODEL_V1 = pickle.dumps({"weights": [1, 2, 3]})
MODEL_V2 = pickle.dumps({"weights": [4, 5, 6]})
INDEX = "churn:\n  type: model\n  path: models/churn.pkl\n  labels: [Major version]\n"


@pytest.fixture
def registry(served: Served) -> Path:
    """churn v1.0.0 (prod) and v2.0.0 (staging), registered and promoted with gitstage -r URL."""
    work = served.new_repo("registry", {"artifacts.yaml": INDEX, "models/churn.pkl": MODEL_V1})
    url = served.url()
    assert served.gitstage("register", "churn", "--version", "v1.0.0", "-r", url).returncode == 0
    done = served.gitstage("promote", "churn", "--version", "v1.0.0", "--stage", "prod", "-r", url)
    assert done.returncode == 0, done.stderr
    served.git(work, "pull", "-q", "--tags", "origin", "main")
    served.git(work, "checkout", "-qb", "try-large-dataset")
    served.commit(work, {"models/churn.pkl": MODEL_V2}, "bigger dataset")
    served.git(work, "push", "-q", "origin", "try-large-dataset")
    # A branch other than the default, without a clone: the seed's second version.
    done = served.gitstage("register", "churn", "try-large-dataset", "-r", url, "--bump-major")
    assert done.returncode == 0, done.stderr
    assert "churn@v2.0.0" in done.stdout
    done = served.gitstage(
        "assign", "churn", "--version", "v2.0.0", "--stage", "staging", "-r", url
    )
    assert done.returncode == 0, done.stderr
    return work


def test_register_and_promote_read_back_by_gto(served: Served, registry: Path) -> None:
    clone = served.clone("gto-view")
    for flags in ([], ["churn"], ["churn#prod"], ["--sort", "semver", "--vs", "-1"]):
        ours = served.gitstage("show", "--json", *flags, "-r", served.url())
        theirs = served.gto("show", "--json", *flags, cwd=clone)
        assert ours.returncode == theirs.returncode == 0, ours.stderr
        assert ours.stdout == theirs.stdout
    # gto writes, gitstage reads the URL: the same history.
    assert (
        served.gto(
            "assign", "churn", "--version", "v2.0.0", "--stage", "prod", cwd=clone
        ).returncode
        == 0
    )
    served.git(clone, "push", "-q", "origin", "--tags")
    ours = served.gitstage("history", "churn", "--json", "-r", served.url())
    assert ours.stdout == served.gto("history", "churn", "--json", cwd=clone).stdout
    assert (
        served.gitstage("show", "-r", served.url()).stdout
        == served.gitstage("show", cwd=clone).stdout
    )


def test_which_latest_and_stages(served: Served, registry: Path) -> None:
    clone = served.clone("gto-view")
    url = served.url()
    which = served.gitstage("which", "churn", "prod", "-r", url)
    assert (
        which.stdout
        == served.gto("show", "churn#prod", "--version", cwd=clone).stdout
        == "v1.0.0\n"
    )
    ref = served.gitstage("which", "churn", "staging", "--ref", "-r", url)
    assert ref.stdout == served.gto("show", "churn#staging", "--ref", cwd=clone).stdout
    latest = served.gitstage("latest", "churn", "-r", url)
    assert latest.stdout == served.gto("show", "churn@latest", "--version", cwd=clone).stdout
    for flags in ([], ["--used"], ["--allowed"], ["--json"], ["--used", "--json"]):
        assert (
            served.gitstage("stages", *flags, "-r", url).stdout
            == served.gto("stages", *flags, cwd=clone).stdout
        )
    clash = served.gitstage("stages", "--used", "--allowed", "-r", url)
    assert clash.returncode == 2
    assert clash.stderr == "gitstage: error: --allowed and --used are mutually exclusive\n"


def test_describe_like_gto_api(served: Served, registry: Path) -> None:
    import gto.api

    clone = served.clone("gto-view")
    done = served.gitstage("describe", "churn#prod", "-r", served.url())
    assert done.returncode == 0, done.stderr
    theirs = gto.api.describe(str(clone), "churn#prod")
    assert json.loads(done.stdout) == theirs.model_dump()
    assert served.gitstage("describe", "churn", "--path", "-r", served.url()).stdout == (
        "models/churn.pkl\n"
    )
    missing = served.gitstage("describe", "nope", "-r", served.url())
    assert (missing.returncode, missing.stderr) == (
        1,
        "gitstage: error: artifacts.yaml has no entry for 'nope' at HEAD\n",
    )


def test_fetch_at_a_stage_like_dvc_get(served: Served, registry: Path) -> None:
    project = served.tmp / "project"
    project.mkdir()
    (project / "train.py").write_text("print('mine')\n")
    done = served.gitstage(
        "fetch", "churn", "--stage", "staging", "-r", served.url(), "-o", ".", cwd=project
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in project.iterdir()) == ["churn.pkl", "train.py"]
    assert (project / "churn.pkl").read_bytes() == MODEL_V2
    assert "churn v2.0.0 (staging, churn#staging#" in done.stderr
    dest = served.tmp / "managed"
    done = served.gitstage(
        "fetch", "churn", "--stage", "prod", "-r", served.url(), "--dest", str(dest)
    )
    manifest = json.loads((dest / ".gitstage-manifest.json").read_text())
    assert (manifest["version"], manifest["stage"]) == ("v1.0.0", "prod")
    assert (manifest["registration_tag"], manifest["assignment_tag"]) == (
        "churn@v1.0.0",
        "churn#prod#1",
    )
    nowhere = served.gitstage("fetch", "churn", "--stage", "qa", "-r", served.url())
    assert (nowhere.returncode, nowhere.stderr) == (
        3,
        "gitstage: error: no version of 'churn' is in stage 'qa'\n",
    )
    both = served.gitstage("fetch", "churn", "--stage", "qa", "--latest", "-r", served.url())
    assert both.returncode == 2
    assert "dvc get" in served.gitstage("fetch", "--help").stdout


def test_load_from_python_like_mlem(
    served: Served, registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in served.env.items():
        if key.startswith("GITSTAGE_"):
            monkeypatch.setenv(key, value)
    assert api.load("churn", repo=served.url(), stage="prod") == {"weights": [1, 2, 3]}
    assert api.load("churn", repo=served.url()) == {"weights": [4, 5, 6]}  # latest
    with pytest.raises(UnsignedPromotionError, match=r"churn#prod#1 is unsigned"):
        api.load("churn", repo=served.url(), stage="prod", require_signed=True)
    assert api.find_version_in_stage(served.url(), "churn", "prod").version == "v1.0.0"


def test_cross_repository_link_pinned_to_a_tag(served: Served, registry: Path) -> None:
    team = served.new_repo(
        "team",
        {"artifacts.yaml": "linear_regression:\n  path: lr.pkl\n", "lr.pkl": MODEL_V1},
    )
    served.git(team, "tag", "-a", "linear_regression@v1.0.0", "-m", "r")
    served.git(team, "push", "-q", "origin", "--tags")
    floating = served.gitstage(
        "link", "lr", "--source-repo", served.url("team.git"), "--rev", "main",
        "--artifact", "linear_regression", cwd=registry,
    )  # fmt: skip
    assert floating.returncode == 1
    assert "is a branch, so the link floats" in floating.stderr
    done = served.gitstage(
        "link", "lr", "--source-repo", served.url("team.git"),
        "--rev", "linear_regression@v1.0.0", "--artifact", "linear_regression", cwd=registry,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    served.commit(registry, {}, "link lr")
    served.git(registry, "push", "-q", "origin", "HEAD:main")
    assert served.gitstage("check", "--links", cwd=registry).returncode == 0
    assert (
        served.gitstage(
            "register", "lr", "--version", "v1.0.0", "-r", served.url(), "main"
        ).returncode
        == 0
    )
    path = served.gitstage("fetch", "lr", "-r", served.url(), "-o", str(served.tmp / "lr.pkl"))
    assert path.returncode == 0, path.stderr
    assert (served.tmp / "lr.pkl").read_bytes() == MODEL_V1
    assert "via 1 link" in path.stderr


def test_links_ci_check_fails_on_a_floating_rev(served: Served, registry: Path) -> None:
    served.new_repo("team", {"lr.pkl": MODEL_V1})
    link = {"repo": served.url("team.git"), "rev": "main", "path": "lr.pkl"}
    gone = {"repo": served.url("team.git"), "rev": "v9", "path": "lr.pkl"}
    index = {"churn": {"path": "models/churn.pkl"}}
    index["lr"] = {"custom": {"gitstage": {"link": link}}}
    index["old"] = {"custom": {"gitstage": {"link": gone}}}
    served.commit(registry, {"artifacts.yaml": json.dumps(index)}, "hand-written links")
    done = served.gitstage("check", "--links", cwd=registry)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines == [
        f"link of lr ({served.url('team.git')}@main): rev 'main' is a branch, so the link floats:"
        " pin a tag or a commit",
        f"link of old ({served.url('team.git')}@v9): rev 'v9' is neither a tag nor a commit of"
        " the linked repo",
    ]
    assert served.gitstage("check", cwd=registry).returncode == 0  # without --links: no network


def test_ci_job_reacting_to_a_stage_tag(served: Served, registry: Path) -> None:
    clone = served.clone("ci")
    tag = "refs/tags/churn#staging#2"
    for flag in ("--stage", "--version", "--name", "--event", "--json"):
        ours = served.gitstage("check-ref", tag, flag, "-r", served.url())
        assert ours.stdout == served.gto("check-ref", tag, flag, cwd=clone).stdout, flag
    clash = served.gitstage("check-ref", tag, "--stage", "--version", "-r", served.url())
    assert (clash.returncode, clash.stderr) == (
        2,
        "gitstage: error: --version and --stage are mutually exclusive\n",
    )
