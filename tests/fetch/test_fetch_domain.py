"""The pure parts of fetching: path safety, symlink resolution, DVC files, links."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from gitstage.domain.fetch.dvc_files import (
    find_out,
    object_key,
    parse_dir_listing,
    parse_dvc_config,
    parse_dvcfile,
    parse_lockfile,
)
from gitstage.domain.fetch.errors import (
    BadInputError,
    NotFoundError,
    UnsafePathError,
    UnsupportedError,
)
from gitstage.domain.fetch.links import is_valid_rev, link_of
from gitstage.domain.fetch.plan import artifact_entry
from gitstage.domain.fetch.repo_paths import Node, NodeKind, resolve, safe_relative
from gitstage.domain.registry.index import ArtifactAnnotation
from gitstage.domain.repo_urls import redact, same_origin, split_userinfo

P = PurePosixPath


@pytest.mark.parametrize(
    ("text", "expected"),
    [("models/m.pkl", "models/m.pkl"), ("./a//b/", "a/b"), ("a/./b", "a/b")],
)
def test_safe_relative_normalizes(text: str, expected: str) -> None:
    assert safe_relative(text) == P(expected)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("../x", UnsafePathError),
        ("a/../../x", UnsafePathError),
        ("a/..", UnsafePathError),
        ("/etc/passwd", UnsafePathError),
        ("", BadInputError),
        (".", BadInputError),
        ("a\x00b", BadInputError),
    ],
)
def test_safe_relative_refuses(text: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        safe_relative(text)


TREE = {
    "a": Node(NodeKind.DIR),
    "a/f": Node(NodeKind.FILE),
    "a/up": Node(NodeKind.SYMLINK, "../b/g"),
    "b": Node(NodeKind.DIR),
    "b/g": Node(NodeKind.FILE),
    "b/dirlink": Node(NodeKind.SYMLINK, "../a"),
    "out": Node(NodeKind.SYMLINK, "../../etc"),
    "abs": Node(NodeKind.SYMLINK, "/etc/passwd"),
    "loop": Node(NodeKind.SYMLINK, "loop"),
    "sub": Node(NodeKind.SUBMODULE),
}


def lookup(path: PurePosixPath) -> Node | None:
    return TREE.get(str(path))


@pytest.mark.parametrize(
    ("path", "canonical"),
    [("a/f", "a/f"), ("a/up", "b/g"), ("b/dirlink/f", "a/f"), ("b/dirlink/up", "b/g")],
)
def test_symlinks_inside_the_tree_are_followed(path: str, canonical: str) -> None:
    assert resolve(P(path), lookup)[0] == P(canonical)


@pytest.mark.parametrize(
    ("path", "error", "fragment"),
    [
        ("out/passwd", UnsafePathError, "leads out of the repository"),
        ("abs", UnsafePathError, "is absolute"),
        ("loop", UnsafePathError, "too many levels of symlinks"),
        ("sub/x", UnsupportedError, "submodule"),
        ("a/f/x", NotFoundError, "a/f is not a directory"),
        ("nope", NotFoundError, "nope is missing"),
    ],
)
def test_resolution_refusals(path: str, error: type[Exception], fragment: str) -> None:
    with pytest.raises(error, match=fragment):
        resolve(P(path), lookup)


def test_dvcfile_outs_are_relative_to_the_file() -> None:
    outs = parse_dvcfile(
        b"outs:\n- md5: 0123456789abcdef0123456789abcdef.dir\n  hash: md5\n  path: data\n",
        P("models/data.dvc"),
    )
    assert [(o.path, o.is_dir) for o in outs] == [(P("models/data"), True)]
    assert object_key(outs[0].md5) == "files/md5/01/23456789abcdef0123456789abcdef.dir"
    assert find_out(outs, P("models/data/x/y.txt")) == (outs[0], P("x/y.txt"))
    assert find_out(outs, P("models/other")) is None


def test_lockfile_paths_honour_the_stage_wdir() -> None:
    lock = (
        b"schema: '2.0'\nstages:\n  train:\n    outs:\n    - path: model.pkl\n"
        b"      hash: md5\n      md5: 0123456789abcdef0123456789abcdef\n"
        b"  each@a:\n    outs:\n    - path: m.bin\n      hash: md5\n"
        b"      md5: 0123456789abcdef0123456789abcdef\n"
    )
    project = (
        b"stages:\n  train:\n    wdir: ../build\n    cmd: x\n  each:\n    foreach: [a]\n"
        b"    do:\n      wdir: out\n      cmd: y\n"
    )
    outs = parse_lockfile(lock, project, P("pipelines/dvc.lock"))
    assert [str(o.path) for o in outs] == ["build/model.pkl", "pipelines/out/m.bin"]


def test_old_lock_schema_is_unsupported() -> None:
    with pytest.raises(UnsupportedError):
        parse_lockfile(b"train:\n  outs: []\n", None, P("dvc.lock"))


def test_dvc_config_sections() -> None:
    config = parse_dvc_config(
        b"[core]\n    remote = http\n['remote \"http\"']\n    url = https://h/x\n"
        b"['remote \"s3\"']\n    url = s3://b/p\n    endpointurl = http://minio:9000\n",
        ".dvc/config",
    )
    assert config.remote(None, "c").url == "https://h/x"
    assert config.remote(None, "c").endpoint_url is None
    assert config.remote("s3", "c").url == "s3://b/p"
    assert config.remote("s3", "c").endpoint_url == "http://minio:9000"
    with pytest.raises(BadInputError, match="'gone' is not defined"):
        config.remote("gone", "c")
    with pytest.raises(BadInputError, match="no default DVC remote"):
        parse_dvc_config(None, "c").remote(None, "c")


def test_dir_listing_refuses_duplicates_and_escapes() -> None:
    md5 = "0123456789abcdef0123456789abcdef"
    with pytest.raises(BadInputError, match="duplicate"):
        parse_dir_listing(
            f'[{{"md5": "{md5}", "relpath": "a"}}, {{"md5": "{md5}", "relpath": "./a"}}]'.encode(),
            "l",
        )
    with pytest.raises(UnsafePathError):
        parse_dir_listing(f'[{{"md5": "{md5}", "relpath": "/etc/x"}}]'.encode(), "l")


def test_links_live_under_the_gitstage_key_only() -> None:
    plain = ArtifactAnnotation(custom={"link": "https://paper.example/x"})
    assert link_of("m", plain) is None
    annotation = ArtifactAnnotation(
        custom={"gitstage": {"link": {"repo": "https://h/r.git", "rev": "v1", "path": "m.pkl"}}}
    )
    link = link_of("m", annotation)
    assert link is not None
    assert (link.repo, link.rev, link.path) == ("https://h/r.git", "v1", "m.pkl")
    with pytest.raises(UnsafePathError, match=r"custom\.gitstage\.link: path '\.\./x' escapes"):
        link_of(
            "m",
            ArtifactAnnotation(
                custom={"gitstage": {"link": {"repo": "r", "rev": "v1", "path": "../x"}}}
            ),
        )
    with pytest.raises(BadInputError, match="branch: Extra inputs are not permitted"):
        link_of(
            "m",
            ArtifactAnnotation(
                custom={"gitstage": {"link": {"repo": "r", "rev": "v1", "branch": "x"}}}
            ),
        )


def test_url_credentials_are_split_and_redacted() -> None:
    clean, user, password = split_userinfo("https://bob:s3cr3t@git.example:8443/r.git")
    assert (clean, user, password) == ("https://git.example:8443/r.git", "bob", "s3cr3t")
    assert redact("fatal: https://bob:s3cr3t@h/x failed") == "fatal: https://***@h/x failed"
    assert same_origin("https://h:1/a", "https://h:1/b")
    assert not same_origin("https://h:1/a", "https://h:2/a")
    assert not same_origin("https://h/a", "https://evil/a")


class DictTree:
    """A TreeReader over {path: content}; directories are implied by the paths."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = files

    def node(self, path: PurePosixPath) -> Node | None:
        key = str(path)
        if key in self.files:
            return Node(NodeKind.FILE)
        if any(name.startswith(key + "/") for name in self.files):
            return Node(NodeKind.DIR)
        return None

    def read(self, path: PurePosixPath) -> bytes:
        return self.files[str(path)].encode()

    def children(self, path: PurePosixPath) -> list[tuple[str, Node]]:
        prefix = "" if str(path) == "." else f"{path}/"
        names = {
            name[len(prefix) :].split("/")[0] for name in self.files if name.startswith(prefix)
        }
        found = (self.node(path / name) for name in sorted(names))
        return [(name, node) for name, node in zip(sorted(names), found, strict=True) if node]


def test_dvc_yaml_artifacts_section_names_artifacts() -> None:
    tree = DictTree(
        {
            "artifacts.yaml": "m:\n  path: m.bin\n",
            "dvc.yaml": "artifacts:\n  root-model:\n    path: models/r.pt\n",
            "cv/dvc.yaml": "artifacts:\n  seg:\n    path: models/seg.pt\n    type: model\n",
        }
    )
    assert artifact_entry(tree, "m", "c").path == P("m.bin")
    assert artifact_entry(tree, "root-model", "c").path == P("models/r.pt")
    assert artifact_entry(tree, "cv:seg", "c").path == P("cv/models/seg.pt")
    with pytest.raises(NotFoundError, match="'cv:nope' is not registered"):
        artifact_entry(tree, "cv:nope", "c")


@pytest.mark.parametrize(
    ("rev", "valid"),
    [
        ("a" * 40, True),
        ("v1.0.0", True),
        ("churn@v1.2.0+b.1", True),
        ("m#prod#3", True),
        ("--upload-pack=x", False),
        ("a..b", False),
        ("HEAD@{1}", False),
        ("x:y", False),
        ("ref.lock", False),
        ("", False),
    ],
)
def test_revisions(rev: str, valid: bool) -> None:
    assert is_valid_rev(rev) is valid
