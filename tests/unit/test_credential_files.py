"""The askpass script and SSH files are written by many threads at once (the operator syncs its
mirrors in parallel): every writer succeeds, the files are whole, private, and no temporary
file is left behind."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gitstage.adapters.git import credentials
from gitstage.adapters.git.credentials import GitCredentials, git_environment


def test_concurrent_writers_of_the_askpass_script_all_succeed(tmp_path: Path) -> None:
    secret = GitCredentials("alice", "s3cret", None)

    def environment(_: int) -> dict[str, str]:
        return git_environment({}, secret, tmp_path, url="https://git.example/r.git")

    with ThreadPoolExecutor(max_workers=16) as pool:
        environments = list(pool.map(environment, range(400)))
    scripts = {env["GIT_ASKPASS"] for env in environments}
    assert scripts == {str(tmp_path / "askpass.sh")}
    script = tmp_path / "askpass.sh"
    assert stat.S_IMODE(script.stat().st_mode) == stat.S_IRWXU
    assert "s3cret" not in script.read_text()  # the secret goes through the environment only
    assert sorted(p.name for p in tmp_path.iterdir()) == ["askpass.sh"]


def test_concurrent_writers_of_a_private_file_leave_one_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "identity"
    contents = [f"key {n}\n" * 500 for n in range(4)]

    def write(number: int) -> None:
        credentials._private_file(target, contents[number % 4])

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(write, range(200)))
    assert target.read_text() in contents
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["identity"]
