"""Tag objects streamed by one `git cat-file --batch` child and parsed by another, on the second
core, while this interpreter reads HEAD and folds the batches already read.

A cold read needs every tag object of the registry (120,000 on a large one). Through libgit2
each costs a lookup in the pack and a Tag object (some 11 µs, on this interpreter's core);
`git cat-file --batch --buffer` sends them raw in half that time, into a child interpreter that
parses them (tag_records.py) and sends back rows that load in a tenth of the parsing's time. A
thread drains that pipe (the children would stop at 64 KB otherwise). An object the parser
defers, a missing one, and everything after a failure of either child are simply not answered:
the caller reads those through libgit2, so rows and error messages stay those of libgit2.

Not used where git might do more than read: an object directory from the environment, or a
partial clone (git would fetch a missing object from its promisor remote). git runs without
replace refs, which libgit2 ignores too.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Collection, Iterable
from typing import IO

import gitstage
from gitstage.adapters.git.object_cache import Row
from gitstage.adapters.git.tag_records import LENGTH

_CHUNK = 1 << 20
_CAT_FILE = ("cat-file", "--batch", "--buffer")
_PARSER = ("-P", "-m", "gitstage.adapters.git.tag_records")  # -P: not from the working dir
_ENV_OBJECT_DIRS = ("GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES")


class TagStream:
    """Rows of the objects requested at start, in frames, loaded as the caller asks for them."""

    def __init__(self, processes: list[subprocess.Popen[bytes]], requested: Iterable[str]) -> None:
        self._processes = processes  # git, then the parser reading its output
        self._pending = set(requested)  # requested, not yet answered
        self._rows: dict[str, Row] = {}
        self._chunks: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._buffer = b""
        self._ended = False
        output = processes[-1].stdout
        assert output is not None
        self._reader = threading.Thread(target=_drain, args=(output, self._chunks), daemon=True)
        self._reader.start()

    @classmethod
    def start(cls, git_dir: str, common_dir: str, oids: Collection[str]) -> TagStream | None:
        """A stream of `oids` (in that order); None where git must not or cannot read them."""
        if not streamable(common_dir):
            return None
        processes: list[subprocess.Popen[bytes]] = []
        with tempfile.TemporaryFile() as listing:  # git reads it as it goes: no writer thread
            listing.write("".join(f"{oid}\n" for oid in oids).encode("ascii"))
            listing.seek(0)
            try:
                processes.append(
                    _spawn(git_command(git_dir, *_CAT_FILE), listing, git_environment())
                )
                processes.append(
                    _spawn([sys.executable, *_PARSER], processes[0].stdout, _parser_environment())
                )
            except OSError:
                stop_processes(processes)
                _close_pipes(processes)
                return None
        _close_pipes(processes[:1])  # git's output is the parser's now
        return cls(processes, oids)

    def take(self, oids: Collection[str]) -> dict[str, Row]:
        """The rows the stream answers among `oids`; the others are the caller's to read."""
        wanted = [oid for oid in oids if oid in self._pending or oid in self._rows]
        for oid in wanted:
            while oid in self._pending and not self._ended:
                self._read_frame()
        if not self._pending and not self._ended:
            self.close()  # every answer is in: reap the children now
        return {oid: self._rows[oid] for oid in wanted if oid in self._rows}

    def close(self) -> None:
        """Stop the children if they are still sending, and reap them."""
        stop_processes(self._processes)
        self._reader.join()
        _close_pipes(self._processes)
        self._ended = True

    def _read_frame(self) -> None:
        while len(self._buffer) < LENGTH or len(self._buffer) < LENGTH + self._frame_size():
            chunk = self._chunks.get()
            if chunk is None:
                self._ended = True
                return
            self._buffer += chunk
        size = LENGTH + self._frame_size()
        frame, self._buffer = self._buffer[LENGTH:size], self._buffer[size:]
        try:
            # Data from our own child, in the format it was written in.
            rows, done = marshal.loads(frame)  # noqa: S302
        except (ValueError, EOFError, TypeError):
            self.close()  # the parser failed: libgit2 reads the rest
            return
        self._rows.update(rows)
        self._pending.difference_update(done)

    def _frame_size(self) -> int:
        return int.from_bytes(self._buffer[:LENGTH], "big")


def _spawn(
    command: list[str], stdin: IO[bytes] | None, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    )


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    """Kill and reap; their pipes are closed by the caller (the reader may be reading one)."""
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(OSError):
                process.kill()
        process.wait()


def _close_pipes(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.stdout is not None:
            process.stdout.close()


def _drain(stdout: IO[bytes], chunks: queue.SimpleQueue[bytes | None]) -> None:
    """Move the parser's output into `chunks` as it comes, then None (on end or failure)."""
    try:
        while chunk := os.read(stdout.fileno(), _CHUNK):
            chunks.put(chunk)
    except OSError:
        pass
    finally:
        chunks.put(None)


def streamable(common_dir: str) -> bool:
    """Whether git is here and reads this repository's objects as libgit2 does, without
    fetching any."""
    if shutil.which("git") is None or any(os.environ.get(name) for name in _ENV_OBJECT_DIRS):
        return False
    try:
        with open(os.path.join(common_dir, "config"), "rb") as handle:
            config = handle.read().lower()
    except OSError:
        return False
    return b"promisor" not in config and b"partialclone" not in config


def git_command(git_dir: str, *args: str) -> list[str]:
    """git on this repository only, without replace refs (libgit2 ignores them too)."""
    return [shutil.which("git") or "git", f"--git-dir={git_dir}", "--no-replace-objects", *args]


def git_environment() -> dict[str, str]:
    """Ours without git's variables (a hook's GIT_DIR, GIT_INDEX_FILE, ...); no prompts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_TERMINAL_PROMPT"] = "0"
    return env


def _parser_environment() -> dict[str, str]:
    """This interpreter's environment, with this gitstage package first on the path."""
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(gitstage.__file__)))
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": package_root + (os.pathsep + path if path else "")}
