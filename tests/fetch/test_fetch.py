"""`gitstage fetch` end to end: a real DVC registry behind loopback git (auth) and HTTP servers."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gitstage.cli.main import cli
from gitstage.dev.git_server import GitHttpServer
from gitstage.domain.fetch.manifest import MANIFEST_FILE
from gitstage.fetching import FetchSpec, fetch, fetch_artifact
from tests.fetch.conftest import AUTH, Registry
from tests.support.dvc_project import DvcProject

AUTH_ENV = {"GITSTAGE_GIT_USERNAME": AUTH.username, "GITSTAGE_GIT_PASSWORD": AUTH.password}


def fetch_cli(*args: str, env: dict[str, str | None] | None = None) -> Result:
    environment: dict[str, str | None] = {**AUTH_ENV, **(env or {})}
    return CliRunner().invoke(cli, ["fetch", *args], env=environment, catch_exceptions=False)


def fetch_http(
    registry: Registry,
    artifact: str,
    dest: Path,
    *extra: str,
    rev: str | None = None,
    env: dict[str, str | None] | None = None,
) -> Result:
    return fetch_cli(
        "--repo",
        registry.url,
        "--rev",
        rev or registry.http_commit,
        "--artifact",
        artifact,
        "--dest",
        str(dest),
        *extra,
        env=env,
    )


def manifest_of(dest: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((dest / MANIFEST_FILE).read_text())
    return loaded


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_one_line_error(result: Result, code: int, fragment: str) -> None:
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("gitstage: error: ")
    assert fragment in lines[0]


def assert_nothing_at(dest: Path) -> None:
    assert not dest.exists()
    assert [p.name for p in dest.parent.iterdir() if dest.name in p.name] == []


class TestDvcOutputs:
    def test_file_from_a_local_remote_through_a_local_repository(
        self, registry: Registry, tmp_path: Path
    ) -> None:
        dest = tmp_path / "dest"
        result = fetch_cli(
            "--repo",
            str(registry.project.path),
            "--rev",
            registry.local_commit,
            "--artifact",
            "model",
            "--dest",
            str(dest),
        )
        assert result.exit_code == 0, result.stderr
        assert result.stdout.strip() == str(dest / "model.bin")
        assert (dest / "model.bin").read_bytes() == registry.content["model"]
        manifest = manifest_of(dest)
        assert manifest["kind"] == "dvc"
        assert manifest["commit"] == registry.local_commit
        assert manifest["files"] == [
            {"path": "model.bin", "size": 300_000, "sha256": sha256(registry.content["model"])}
        ]

    def test_directory_from_an_http_remote_over_authenticated_git(
        self, registry: Registry, tmp_path: Path
    ) -> None:
        before = registry.files.stats.bytes_sent
        dest = tmp_path / "bundle"
        result = fetch_http(registry, "bundle", dest, "--version", "v1.0.0", "--stage", "prod")
        assert result.exit_code == 0, result.stderr
        assert (dest / "weights.bin").read_bytes() == registry.content["weights"]
        assert (dest / "config.json").read_bytes() == registry.content["config"]
        assert (dest / "nested" / "vocab.txt").read_bytes() == registry.content["vocab"]
        assert registry.files.stats.bytes_sent - before >= 200_000
        manifest = manifest_of(dest)
        assert (manifest["version"], manifest["stage"], manifest["target"]) == (
            "v1.0.0",
            "prod",
            ".",
        )
        paths = [entry["path"] for entry in manifest["files"]]  # type: ignore[attr-defined]
        assert paths == ["config.json", "nested/vocab.txt", "weights.bin"]

    def test_file_inside_a_directory_output(self, registry: Registry, tmp_path: Path) -> None:
        result = fetch_http(registry, "vocab", tmp_path / "d")
        assert result.exit_code == 0, result.stderr
        assert (tmp_path / "d" / "vocab.txt").read_bytes() == registry.content["vocab"]

    def test_pipeline_output_from_dvc_lock(self, registry: Registry, tmp_path: Path) -> None:
        result = fetch_http(registry, "metrics", tmp_path / "d")
        assert result.exit_code == 0, result.stderr
        assert json.loads((tmp_path / "d" / "metrics.json").read_text()) == {"acc": 0.9}

    def test_checksum_mismatch_is_refused(self, registry: Registry, tmp_path: Path) -> None:
        dest = tmp_path / "d"
        result = fetch_http(registry, "model", dest, rev=registry.tampered_commit)
        assert_one_line_error(result, 6, "checksum mismatch for model.bin")
        assert_nothing_at(dest)

    def test_progress_is_shown_when_asked(
        self, registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        spec = FetchSpec(str(registry.project.path), registry.local_commit, "model", tmp_path / "d")
        fetch(spec, progress=True)
        assert "fetching model: 0.3/0.3 MB (100%)" in capsys.readouterr().err


class TestGitContent:
    def test_file(self, registry: Registry, tmp_path: Path) -> None:
        result = fetch_http(registry, "params", tmp_path / "d")
        assert result.exit_code == 0, result.stderr
        assert (tmp_path / "d" / "params.yaml").read_bytes() == registry.content["params"]
        assert manifest_of(tmp_path / "d")["kind"] == "git"

    def test_directory_copies_inner_symlinks_and_keeps_the_exec_bit(
        self, registry: Registry, tmp_path: Path
    ) -> None:
        dest = tmp_path / "d"
        result = fetch_http(registry, "gitdir", dest)
        assert result.exit_code == 0, result.stderr
        assert (dest / "link.txt").read_text() == "a\n"
        assert not (dest / "link.txt").is_symlink()
        assert os.access(dest / "run.sh", os.X_OK)
        assert not os.access(dest / "weights.txt", os.X_OK)

    def test_git_lfs_pointer_is_refused(self, registry: Registry, tmp_path: Path) -> None:
        result = fetch_http(registry, "lfs", tmp_path / "d")
        assert_one_line_error(result, 7, "is a git-lfs pointer")
        assert_nothing_at(tmp_path / "d")


class TestUnsafePaths:
    @pytest.mark.parametrize(
        ("artifact", "extra", "fragment"),
        [
            ("model", ("--path", "../outside.bin"), "escapes with '..'"),
            ("model", ("--path", "models/../../x"), "escapes with '..'"),
            ("model", ("--path", "/etc/passwd"), "is absolute"),
            ("escape", (), "escapes with '..'"),
            ("absolute", (), "is absolute"),
            ("sneaky", (), "symlink sneaky leads out of the repository"),
            ("sneaky-abs", (), "symlink sneaky_abs is absolute"),
            ("trap", (), "symlink trap/evil leads out of the repository"),
            ("evil-listing", (), "escapes with '..'"),
        ],
    )
    def test_refused(
        self,
        registry: Registry,
        tmp_path: Path,
        artifact: str,
        extra: tuple[str, ...],
        fragment: str,
    ) -> None:
        dest = tmp_path / "sandbox" / "dest"
        dest.parent.mkdir()
        result = fetch_http(registry, artifact, dest, *extra)
        assert_one_line_error(result, 4, fragment)
        assert list((tmp_path / "sandbox").iterdir()) == []
        assert not (tmp_path / "pwned").exists()


class TestAtomicity:
    def test_remote_dying_mid_file_leaves_nothing(self, registry: Registry, tmp_path: Path) -> None:
        registry.files.cut_after = 50_000
        try:
            result = fetch_http(registry, "bundle", tmp_path / "d")
        finally:
            registry.files.cut_after = None
        assert_one_line_error(result, 5, "stopped after")
        assert_nothing_at(tmp_path / "d")

    def test_failed_update_keeps_the_previous_artifact(
        self, registry: Registry, tmp_path: Path
    ) -> None:
        dest = tmp_path / "d"
        assert fetch_http(registry, "model", dest).exit_code == 0
        before = manifest_of(dest)
        registry.files.cut_after = 1000
        try:
            result = fetch_http(registry, "bundle", dest)
        finally:
            registry.files.cut_after = None
        assert result.exit_code == 5
        assert manifest_of(dest) == before
        assert sorted(p.name for p in dest.iterdir()) == [MANIFEST_FILE, "model.bin"]
        assert (dest / "model.bin").read_bytes() == registry.content["model"]

    def test_size_limit(self, registry: Registry, tmp_path: Path) -> None:
        result = fetch_http(registry, "model", tmp_path / "d", "--max-bytes", "100000")
        assert_one_line_error(result, 6, "size limit of 100000 bytes exceeded")
        assert_nothing_at(tmp_path / "d")
        result = fetch_http(registry, "gitdir", tmp_path / "d", "--max-bytes", "3")
        assert_one_line_error(result, 6, "size limit of 3 bytes exceeded")
        assert_nothing_at(tmp_path / "d")

    def test_existing_empty_directory_is_filled_in_place(
        self, registry: Registry, tmp_path: Path
    ) -> None:
        dest = tmp_path / "mnt"
        dest.mkdir()
        assert fetch_http(registry, "bundle", dest).exit_code == 0
        assert sorted(p.name for p in dest.iterdir()) == [
            MANIFEST_FILE,
            "config.json",
            "nested",
            "weights.bin",
        ]
        assert fetch_http(registry, "model", dest).exit_code == 0
        assert sorted(p.name for p in dest.iterdir()) == [MANIFEST_FILE, "model.bin"]

    def test_a_project_directory_gets_the_file_and_keeps_its_content(
        self, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("GITSTAGE_CACHE_DIR", str(tmp_path / "cache"))
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "mine.txt").write_text("keep")
        result = fetch_http(registry, "model", tmp_path / "d")
        assert result.exit_code == 0, result.stderr
        assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["mine.txt", "model.bin"]
        assert (tmp_path / "d" / "mine.txt").read_text() == "keep"
        assert (tmp_path / "d" / "model.bin").read_bytes() == registry.content["model"]

    def test_a_directory_artifact_into_a_project_directory_is_refused(
        self, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("GITSTAGE_CACHE_DIR", str(tmp_path / "cache"))
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "mine.txt").write_text("keep")
        result = fetch_http(registry, "bundle", tmp_path / "d")
        assert_one_line_error(result, 2, "needs a new or empty directory")
        assert [p.name for p in (tmp_path / "d").iterdir()] == ["mine.txt"]


class TestRerun:
    def test_same_inputs_are_a_no_op_without_network(
        self, registry: Registry, tmp_path: Path
    ) -> None:
        dest = tmp_path / "d"
        assert fetch_http(registry, "bundle", dest).exit_code == 0
        mtime = (dest / "weights.bin").stat().st_mtime_ns
        requests = (registry.git.stats.requests, registry.files.stats.requests)
        again = fetch_http(registry, "bundle", dest)
        assert again.exit_code == 0
        assert "is already in" in again.stderr
        assert again.stdout.strip() == str(dest)
        assert (registry.git.stats.requests, registry.files.stats.requests) == requests
        assert (dest / "weights.bin").stat().st_mtime_ns == mtime

    def test_new_labels_rewrite_only_the_manifest(self, registry: Registry, tmp_path: Path) -> None:
        dest = tmp_path / "d"
        assert fetch_http(registry, "model", dest, "--stage", "staging").exit_code == 0
        requests = registry.git.stats.requests
        assert fetch_http(registry, "model", dest, "--stage", "prod").exit_code == 0
        assert manifest_of(dest)["stage"] == "prod"
        assert registry.git.stats.requests == requests

    def test_a_damaged_copy_is_fetched_again(self, registry: Registry, tmp_path: Path) -> None:
        dest = tmp_path / "d"
        assert fetch_http(registry, "model", dest).exit_code == 0
        (dest / "model.bin").write_bytes(b"truncated")
        assert fetch_http(registry, "model", dest).exit_code == 0
        assert (dest / "model.bin").read_bytes() == registry.content["model"]


class TestCredentials:
    def test_wrong_password_is_one_line_without_the_secret(
        self, registry: Registry, tmp_path: Path
    ) -> None:
        result = fetch_http(
            registry, "model", tmp_path / "d", env={"GITSTAGE_GIT_PASSWORD": "wrong-Secret-42"}
        )
        assert_one_line_error(result, 5, f"authentication failed for {registry.url}")
        assert "wrong-Secret-42" not in result.stderr + result.stdout
        assert_nothing_at(tmp_path / "d")

    def test_missing_credentials(self, registry: Registry, tmp_path: Path) -> None:
        result = fetch_http(
            registry,
            "model",
            tmp_path / "d",
            env={"GITSTAGE_GIT_USERNAME": None, "GITSTAGE_GIT_PASSWORD": None},
        )
        assert_one_line_error(result, 5, "authentication failed")

    def test_userinfo_in_the_url_is_used_and_never_recorded(
        self, registry: Registry, tmp_path: Path
    ) -> None:
        url = registry.url.replace("http://", f"http://{AUTH.username}:{AUTH.password}@")
        result = fetch_cli(
            "--repo",
            url,
            "--rev",
            registry.http_commit,
            "--artifact",
            "model",
            "--dest",
            str(tmp_path / "d"),
            env={"GITSTAGE_GIT_USERNAME": None, "GITSTAGE_GIT_PASSWORD": None},
        )
        assert result.exit_code == 0, result.stderr
        assert AUTH.password not in result.stderr + result.stdout
        assert AUTH.password not in (tmp_path / "d" / MANIFEST_FILE).read_text()
        assert manifest_of(tmp_path / "d")["request"]["repo"] == registry.url  # type: ignore[index]

    def test_secret_never_appears_in_git_argv(self, registry: Registry, tmp_path: Path) -> None:
        shim_dir = tmp_path / "bin"
        shim_dir.mkdir()
        log = tmp_path / "argv.log"
        shim = shim_dir / "git"
        shim.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec /usr/bin/git "$@"\n')
        shim.chmod(0o755)
        path = f"{shim_dir}{os.pathsep}{os.environ['PATH']}"
        result = fetch_http(registry, "model", tmp_path / "d", env={"PATH": path})
        assert result.exit_code == 0, result.stderr
        assert "fetch" in log.read_text()
        assert AUTH.password not in log.read_text()

    def test_bearer_token(self, registry: Registry, tmp_path: Path) -> None:
        with GitHttpServer(registry.git.root, bearer_token="tok-123") as server:
            result = fetch_cli(
                "--repo",
                server.url("registry.git"),
                "--rev",
                registry.http_commit,
                "--artifact",
                "params",
                "--dest",
                str(tmp_path / "d"),
                env={"GITSTAGE_GIT_PASSWORD": None, "GITSTAGE_GIT_BEARER_TOKEN": "tok-123"},
            )
            assert result.exit_code == 0, result.stderr
            assert server.stats.denied == 0


class TestLinks:
    def central(self, registry: Registry, artifact: str, dest: Path) -> Result:
        return fetch_cli(
            "--repo",
            registry.central_url,
            "--rev",
            registry.central_commit,
            "--artifact",
            artifact,
            "--dest",
            str(dest),
        )

    def test_link_is_followed_and_both_commits_recorded(
        self, registry: Registry, tmp_path: Path
    ) -> None:
        result = self.central(registry, "churn", tmp_path / "d")
        assert result.exit_code == 0, result.stderr
        assert (tmp_path / "d" / "model.bin").read_bytes() == registry.content["model"]
        sources = manifest_of(tmp_path / "d")["sources"]
        assert sources == [
            {
                "repo": registry.central_url,
                "commit": registry.central_commit,
                "artifact": "churn",
                "path": None,
            },
            {
                "repo": registry.url,
                "commit": registry.http_commit,
                "artifact": "model",
                "path": "models/model.bin",
            },
        ]

    def test_link_with_a_path_and_link_by_same_name(
        self, registry: Registry, tmp_path: Path
    ) -> None:
        assert self.central(registry, "churn-params", tmp_path / "a").exit_code == 0
        assert (tmp_path / "a" / "params.yaml").read_bytes() == registry.content["params"]
        assert self.central(registry, "bundle", tmp_path / "b").exit_code == 0
        assert (tmp_path / "b" / "weights.bin").read_bytes() == registry.content["weights"]

    def test_cycle_and_missing_rev_are_refused(self, registry: Registry, tmp_path: Path) -> None:
        assert_one_line_error(self.central(registry, "loop", tmp_path / "a"), 2, "cycle")
        assert_one_line_error(
            self.central(registry, "norev", tmp_path / "b"),
            2,
            "custom.gitstage.link: rev: required",
        )

    def test_credentials_are_not_sent_to_another_host(
        self, registry: Registry, tmp_path: Path
    ) -> None:
        with GitHttpServer(registry.git.root, auth=AUTH) as other:
            local = DvcProject(tmp_path / "local")
            local.path.mkdir()
            local.git("init", "-q", "-b", "main")
            link = {
                "repo": other.url("registry.git"),
                "rev": registry.http_commit,
                "artifact": "model",
            }
            local.write(
                "artifacts.yaml", json.dumps({"m": {"custom": {"gitstage": {"link": link}}}})
            )
            commit = local.commit("link elsewhere")
            result = fetch_cli(
                "--repo",
                str(local.path),
                "--rev",
                commit,
                "--artifact",
                "m",
                "--dest",
                str(tmp_path / "d"),
            )
            assert_one_line_error(result, 5, "authentication failed")
            assert other.stats.requests == other.stats.denied > 0


class TestNotFound:
    @pytest.mark.parametrize(
        ("artifact", "rev", "fragment"),
        [
            ("nope", None, "artifact 'nope' is not registered"),
            ("ghost", None, "models/missing.bin does not exist"),
            ("model", "0" * 40, f"revision {'0' * 40} not found"),
        ],
    )
    def test_exit_3(
        self, registry: Registry, tmp_path: Path, artifact: str, rev: str | None, fragment: str
    ) -> None:
        result = fetch_http(registry, artifact, tmp_path / "d", rev=rev)
        assert_one_line_error(result, 3, fragment)

    def test_missing_repository(self, registry: Registry, tmp_path: Path) -> None:
        result = fetch_cli(
            "--repo",
            registry.git.url("missing.git"),
            "--rev",
            registry.http_commit,
            "--artifact",
            "model",
            "--dest",
            str(tmp_path / "d"),
        )
        assert_one_line_error(result, 3, "not found")

    @pytest.mark.parametrize(
        ("args", "fragment"),
        [
            (("--rev", "--upload-pack=touch /tmp/x"), "invalid revision"),
            (("--artifact", "bad name"), "invalid artifact name"),
            (("--max-bytes", "-1"), "--max-bytes"),
        ],
    )
    def test_bad_input_exit_2(
        self, registry: Registry, tmp_path: Path, args: tuple[str, ...], fragment: str
    ) -> None:
        base = {
            "--repo": registry.url,
            "--rev": registry.http_commit,
            "--artifact": "model",
            "--dest": str(tmp_path / "d"),
        }
        base[args[0]] = args[1]
        result = fetch_cli(*[item for pair in base.items() for item in pair])
        assert_one_line_error(result, 2, fragment)


class TestEnvironmentAndApi:
    def test_options_come_from_the_environment(self, registry: Registry, tmp_path: Path) -> None:
        result = fetch_cli(
            env={
                "GITSTAGE_FETCH_REPO": registry.url,
                "GITSTAGE_FETCH_REV": registry.http_commit,
                "GITSTAGE_FETCH_ARTIFACT": "model",
                "GITSTAGE_FETCH_DEST": str(tmp_path / "d"),
                "GITSTAGE_FETCH_VERSION": "v1.2.0",
                "GITSTAGE_FETCH_STAGE": "prod",
            }
        )
        assert result.exit_code == 0, result.stderr
        manifest = manifest_of(tmp_path / "d")
        assert (manifest["version"], manifest["stage"]) == ("v1.2.0", "prod")

    def test_python_api_caches_by_commit(
        self, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("GITSTAGE_CACHE_DIR", str(tmp_path / "cache"))
        for key, value in AUTH_ENV.items():
            monkeypatch.setenv(key, value)
        path = fetch_artifact(registry.url, registry.http_commit, "model")
        assert path.read_bytes() == registry.content["model"]
        assert path.is_relative_to(tmp_path / "cache" / registry.http_commit)
        requests = registry.git.stats.requests
        assert fetch_artifact(registry.url, registry.http_commit, "model") == path
        assert registry.git.stats.requests == requests
        directory = fetch_artifact(registry.url, registry.http_commit, "bundle")
        assert (directory / "weights.bin").read_bytes() == registry.content["weights"]


def test_a_gto_tag_as_revision_resolves_to_its_commit(registry: Registry, tmp_path: Path) -> None:
    registry.project.git("tag", "-a", "model@v1.0.0", "-m", "register", registry.local_commit)
    result = fetch_cli(
        "--repo",
        str(registry.project.path),
        "--rev",
        "model@v1.0.0",
        "--artifact",
        "model",
        "--dest",
        str(tmp_path / "d"),
    )
    assert result.exit_code == 0, result.stderr
    assert manifest_of(tmp_path / "d")["commit"] == registry.local_commit
    assert (tmp_path / "d" / "model.bin").read_bytes() == registry.content["model"]
