"""`gitstage fetch` against hostile input: a 300 MB blob over --max-bytes is refused from its
object header without being read, trees a thousand levels deep are walked, file names that are
not UTF-8 are refused in one line, and a git or DVC server that goes silent or trickles bytes (in
its body or its headers) is given up on after the stall timeout or at the deadline.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pygit2
import pytest
from click.testing import CliRunner, Result

from gitstage.cli.main import cli
from gitstage.domain.fetch.manifest import MANIFEST_FILE
from tests.fetch.conftest import Registry
from tests.fetch.test_fetch import assert_nothing_at, assert_one_line_error, fetch_cli, fetch_http
from tests.support.console import OPERATOR, run_gitstage
from tests.support.git import init_served_bare, run_git
from tests.support.git_server import CountingGitServer

BIG = 300 * 1024 * 1024


def commit_all(repo: Path) -> str:
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-qm", "content", date=1_700_000_000)
    return run_git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def big_blob_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository whose `big.bin` is a 300 MB blob (zeros: a sparse file, a small object)."""
    repo = tmp_path_factory.mktemp("big") / "repo"
    run_git(repo.parent, "init", "-q", "-b", "main", repo.name)
    with (repo / "big.bin").open("wb") as handle:
        handle.truncate(BIG)
    (repo / "small.txt").write_text("small\n")
    commit_all(repo)
    return repo


def fetch_path(repo: Path, path: str, dest: Path, *extra: str) -> Result:
    return fetch_cli("-r", str(repo), "--rev", "HEAD", "--path", path, "--dest", str(dest), *extra)


@pytest.mark.fault
def test_a_blob_over_the_size_limit_is_refused_in_one_line(
    big_blob_repo: Path, tmp_path: Path
) -> None:
    result = fetch_path(big_blob_repo, "big.bin", tmp_path / "d", "--max-bytes", "1000000")
    assert_one_line_error(result, 6, f"big.bin is {BIG} bytes")
    assert "refused before reading it" in result.stderr
    assert_nothing_at(tmp_path / "d")


@pytest.mark.fault
def test_the_console_script_refuses_it_without_a_traceback(
    big_blob_repo: Path, tmp_path: Path
) -> None:
    repo = str(big_blob_repo)
    args = ["-r", repo, "--rev", "HEAD", "--path", "big.bin", "--max-bytes", "1000000"]
    proc = run_gitstage("fetch", *args, "--dest", str(tmp_path / "d"))
    assert proc.returncode == 6
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("gitstage: error: size limit of 1000000 bytes exceeded")


# Run in a child whose address space is capped 64 MiB above what it uses once imports are done:
# reading the blob (libgit2 inflates it whole) would need 300 MB. The control proves the cap
# bites; the refusal proves the blob is never read.
_UNDER_RLIMIT = textwrap.dedent(
    """
    import resource, sys
    from pathlib import Path, PurePosixPath
    import pygit2
    from gitstage.adapters.fetch.materialize import Located, materialize
    from gitstage.adapters.fetch.progress import Progress
    from gitstage.adapters.fetch.staging import ByteBudget, Staging
    from gitstage.adapters.git.commit_tree import CommitTree
    from gitstage.domain.fetch.errors import IntegrityError
    from gitstage.domain.fetch.plan import locate

    repo, dest, mode = pygit2.Repository(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    tree = CommitTree(repo, str(repo.head.target))
    path = PurePosixPath("big.bin")
    source = locate(tree, path)
    staging = Staging(dest, ByteBudget(1_000_000), Progress("", None, enabled=False))
    status = Path("/proc/self/status").read_text()
    used = int(next(l.split()[1] for l in status.splitlines() if l.startswith("VmSize:"))) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (used + 64 * 2**20, used + 64 * 2**20))
    try:
        if mode == "control":
            tree.read(path)
        else:
            materialize(source, Located(tree, path, None), staging, {})
    except MemoryError:
        print("out of memory")
    except IntegrityError as error:
        print(f"refused: {error}")
    except Exception as error:
        print(f"{type(error).__name__}: {error}")
    """
)


@pytest.mark.fault
@pytest.mark.parametrize("mode", ["control", "fetch"])
def test_the_refused_blob_is_never_read_into_memory(
    big_blob_repo: Path, tmp_path: Path, mode: str
) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _UNDER_RLIMIT, str(big_blob_repo), str(tmp_path / "d"), mode],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(OPERATOR)},
        check=False,
        timeout=300,
    )
    outcome = proc.stdout.strip()
    if mode == "control":  # reading it does not fit: the cap is real
        assert "memory" in outcome.lower(), proc.stderr
    else:
        assert outcome.startswith("refused: size limit of 1000000 bytes exceeded: big.bin")


def deep_repo(path: Path, depth: int) -> Path:
    """A bare registry whose artifact `deep` holds `top.txt` and `d/d/.../leaf.txt`, `depth`
    directories down; built in-process (nothing that deep is ever on disk)."""
    repo = pygit2.init_repository(str(path), bare=True, initial_head="main")
    tree = _tree(repo, [("leaf.txt", _blob(repo, "bottom\n"))])
    for _ in range(depth - 1):
        tree = _tree(repo, [("d", tree)])
    deep = _tree(repo, [("d", tree), ("top.txt", _blob(repo, "top\n"))])
    index = _blob(repo, "deep:\n  type: model\n  path: deep\n")
    root = _tree(repo, [("artifacts.yaml", index), ("deep", deep)])
    who = pygit2.Signature("ds", "ds@example.com", 1_700_000_000, 0)
    commit = repo.create_commit("refs/heads/main", who, who, "deep", root, [])
    repo.create_tag("deep@v1.0.0", commit, pygit2.enums.ObjectType.COMMIT, who, "deep")
    return path


def _blob(repo: pygit2.Repository, text: str) -> pygit2.Oid:
    return repo.create_blob(text.encode())


def _tree(repo: pygit2.Repository, entries: list[tuple[str, pygit2.Oid]]) -> pygit2.Oid:
    builder = repo.TreeBuilder()
    for name, oid in entries:
        kind = repo.get(oid).type  # type: ignore[union-attr]
        mode = pygit2.enums.FileMode.TREE if kind == pygit2.enums.ObjectType.TREE else None
        builder.insert(name, oid, mode or pygit2.enums.FileMode.BLOB)
    return builder.write()


def assert_fetch_and_check_refuse(
    repo: Path, path: str, dest: Path, code: int, reason: str
) -> None:
    """Fetch fails in one line and leaves nothing; check finds the same reason."""
    assert_one_line_error(fetch_path(repo, path, dest), code, reason)
    assert_nothing_at(dest)
    check = check_cli(repo)
    assert check.exit_code == 1
    assert reason in check.stdout


@pytest.mark.fault
def test_a_tree_a_thousand_levels_deep_is_refused_in_one_line(tmp_path: Path) -> None:
    repo = deep_repo(tmp_path / "registry.git", 1000)
    assert_fetch_and_check_refuse(repo, "deep", tmp_path / "d", 7, "nests deeper than 128 levels")


def test_a_tree_a_hundred_levels_deep_is_fetched_without_recursion(tmp_path: Path) -> None:
    repo = deep_repo(tmp_path / "registry.git", 100)
    dest = tmp_path / "d"
    result = fetch_path(repo, "deep", dest)
    assert result.exit_code == 0, result.stderr
    assert dest.joinpath(*["d"] * 100, "leaf.txt").read_text() == "bottom\n"
    assert (dest / "top.txt").read_text() == "top\n"
    assert check_cli(repo).exit_code == 0


def check_cli(repo: Path) -> Result:
    return CliRunner().invoke(cli, ["check", "-r", str(repo)])


@pytest.fixture
def non_utf8_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    run_git(tmp_path, "init", "-q", "-b", "main", repo.name)
    (repo / "model").mkdir()
    (repo / "model" / "weights.bin").write_text("w\n")
    (repo / "model").joinpath(os.fsdecode(b"caf\xe9.txt")).write_text("latin-1 name\n")
    (repo / "artifacts.yaml").write_text("churn:\n  type: model\n  path: model\n")
    commit_all(repo)
    run_git(repo, "tag", "-a", "churn@v1.0.0", "-m", "r", date=1_700_000_010)
    return repo


@pytest.mark.fault
def test_a_file_name_that_is_not_utf8_is_one_line(non_utf8_repo: Path, tmp_path: Path) -> None:
    reason = "model/caf\\xe9.txt: the file name is not UTF-8"
    assert_fetch_and_check_refuse(non_utf8_repo, "model", tmp_path / "d", 7, reason)


class TestSlowDvcRemote:
    """The registry's HTTP DVC remote, made silent or slow for one test each."""

    def test_a_silent_server_is_a_stall(self, registry: Registry, tmp_path: Path) -> None:
        registry.files.hold(1000)
        try:
            result = fetch_http(registry, "model", tmp_path / "d", "--stall-timeout", "1")
        finally:
            registry.files.release()
        assert_one_line_error(result, 5, "no data for 1s (stalled)")
        assert "DVC remote" in result.stderr
        assert_nothing_at(tmp_path / "d")

    @pytest.mark.fault
    def test_a_trickled_body_ends_at_the_deadline(self, registry: Registry, tmp_path: Path) -> None:
        before = registry.files.stats.bytes_sent
        registry.files.trickle_every = 0.1  # never a silence of a second: no stall
        try:
            result = fetch_http(
                registry, "model", tmp_path / "d", "--timeout", "6", "--stall-timeout", "1"
            )
        finally:
            registry.files.trickle_every = None
        assert_one_line_error(result, 5, "the fetch ran past its deadline of 6s")
        assert "download of files/md5/" in result.stderr
        assert registry.files.stats.bytes_sent > before  # it was trickling when it was cut
        assert_nothing_at(tmp_path / "d")

    @pytest.mark.fault
    def test_a_trickled_header_block_ends_at_the_deadline(
        self, registry: Registry, tmp_path: Path
    ) -> None:
        registry.files.trickle_every = 0.1
        registry.files.trickle_headers = True
        try:
            result = fetch_http(
                registry, "model", tmp_path / "d", "--timeout", "6", "--stall-timeout", "1"
            )
        finally:
            registry.files.trickle_headers = False
            registry.files.trickle_every = None
        assert_one_line_error(result, 5, "the fetch ran past its deadline of 6s")
        assert "DVC remote" in result.stderr

    def test_an_announced_length_over_the_limit_is_refused_before_reading(
        self, registry: Registry, tmp_path: Path
    ) -> None:
        """`vocab` is a file of a directory output: its size is only known from the server."""
        result = fetch_http(registry, "vocab", tmp_path / "d", "--max-bytes", "3")
        assert_one_line_error(result, 6, "size limit of 3 bytes exceeded: vocab.txt is 6 bytes")
        assert "refused before reading it" in result.stderr
        assert_nothing_at(tmp_path / "d")

    def test_the_limits_come_from_the_environment(self, registry: Registry, tmp_path: Path) -> None:
        registry.files.hold(1000)
        try:
            result = fetch_http(
                registry,
                "model",
                tmp_path / "d",
                env={"GITSTAGE_FETCH_STALL_TIMEOUT": "1", "GITSTAGE_FETCH_TIMEOUT": "120"},
            )
        finally:
            registry.files.release()
        assert_one_line_error(result, 5, "no data for 1s (stalled)")
        assert not (tmp_path / "d" / MANIFEST_FILE).exists()


@pytest.fixture
def held_git(tmp_path: Path) -> Iterator[tuple[CountingGitServer, str]]:
    """A served registry whose server holds every request until released."""
    served = tmp_path / "served"
    served.mkdir()
    bare = init_served_bare(served / "registry.git")
    work = tmp_path / "work"
    run_git(tmp_path, "clone", "-q", str(bare), str(work))
    (work / "model.bin").write_text("model\n")
    commit = commit_all(work)
    run_git(work, "push", "-q", "origin", "HEAD:main")
    server = CountingGitServer(served)
    server.start()
    server.hold()
    try:
        yield server, commit
    finally:
        server.release()
        server.stop()


def fetch_held(server: CountingGitServer, commit: str, dest: Path, *limits: str) -> Result:
    args = ["-r", server.url("registry.git"), "--rev", commit, "--path", "model.bin"]
    return fetch_cli(*args, "--dest", str(dest), *limits)


def test_a_git_server_that_sends_nothing_is_a_stall(
    held_git: tuple[CountingGitServer, str], tmp_path: Path
) -> None:
    server, commit = held_git
    result = fetch_held(server, commit, tmp_path / "out", "--stall-timeout", "1")
    assert server.waiting.is_set()  # the request was held, not refused
    assert_one_line_error(result, 5, "no data for the stall timeout (stalled)")
    assert_nothing_at(tmp_path / "out")


@pytest.mark.fault
def test_a_git_transfer_ends_at_the_deadline(
    held_git: tuple[CountingGitServer, str], tmp_path: Path
) -> None:
    server, commit = held_git
    limits = ("--timeout", "2", "--stall-timeout", "600")
    result = fetch_held(server, commit, tmp_path / "out", *limits)
    assert server.waiting.is_set()
    assert_one_line_error(result, 5, "the fetch ran past its deadline of 2s")
    assert "git fetch from" in result.stderr
    assert_nothing_at(tmp_path / "out")
