"""A git server over SSH on loopback: asyncssh speaks the protocol, the real `git-upload-pack` and
`git-receive-pack` serve the repositories, and the client is the real OpenSSH `ssh` git runs.

Only public-key authentication, only the keys given, only those two commands, only paths under
the root. The server runs its own event loop in a thread so synchronous tests can use it.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import asyncssh

GIT_COMMANDS = ("git-upload-pack", "git-receive-pack")


@dataclass
class SshKeyPair:
    private_openssh: str
    public_openssh: str

    @classmethod
    def generate(cls) -> SshKeyPair:
        key = asyncssh.generate_private_key("ssh-ed25519")
        return cls(
            key.export_private_key("openssh").decode(),
            key.export_public_key("openssh").decode().strip(),
        )


@dataclass
class SshStats:
    sessions: int = 0
    refused_keys: int = 0
    commands: list[str] = field(default_factory=list)


class _Server(asyncssh.SSHServer):
    def __init__(self, owner: SshGitServer) -> None:
        self._owner = owner

    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        allowed = key.export_public_key("openssh").decode().split()[:2] in self._owner.allowed
        if not allowed:
            self._owner.stats.refused_keys += 1
        return allowed


class SshGitServer:
    """`ssh://git@HOST:PORT/<repo>` for every bare repository under `root` (HOST: loopback, or
    the real node's address for pods)."""

    def __init__(self, root: Path, client_keys: list[SshKeyPair], host: str = "127.0.0.1") -> None:
        self.root = root.resolve()
        self.host = host
        self.allowed = [key.public_openssh.split()[:2] for key in client_keys]
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.stats = SshStats()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self.port = 0

    def url(self, repo: str) -> str:
        return f"ssh://git@{self.host}:{self.port}/{repo}"

    @property
    def known_hosts(self) -> str:
        """The line a client's known_hosts needs to trust this server."""
        public = self.host_key.export_public_key("openssh").decode().strip()
        return f"[{self.host}]:{self.port} {public}\n"

    def start(self) -> SshGitServer:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        self._acceptor = future.result(timeout=30)
        self.port = self._acceptor.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._acceptor is not None:
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()

    async def _close(self) -> None:
        assert self._acceptor is not None
        self._acceptor.close()
        await self._acceptor.wait_closed()
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def __enter__(self) -> SshGitServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    async def _listen(self) -> asyncssh.SSHAcceptor:
        return await asyncssh.create_server(
            lambda: _Server(self),
            self.host,
            0,
            server_host_keys=[self.host_key],
            gss_host=None,  # no GSSAPI probing: keys only
            process_factory=self._serve,
            encoding=None,
        )

    async def _serve(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        self.stats.sessions += 1
        words = shlex.split(process.command or "")
        self.stats.commands.append(" ".join(words[:1]))
        repo = self._repository(words)
        if repo is None:
            process.stderr.write(b"only git-upload-pack and git-receive-pack on a repository\n")
            process.exit(1)
            return
        # As OpenSSH with `AcceptEnv GIT_PROTOCOL` (and the big forges): protocol v2 over SSH.
        protocol = process.env.get("GIT_PROTOCOL")
        env = {**os.environ, "GIT_PROTOCOL": str(protocol)} if protocol else None
        child = await asyncio.create_subprocess_exec(
            words[0],
            str(repo),
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        await process.redirect(stdin=child.stdin, stdout=child.stdout, stderr=child.stderr)
        process.exit(await child.wait())
        await process.wait_closed()  # runs asyncssh's cleanup (drains its output queues)

    def _repository(self, words: list[str]) -> Path | None:
        if len(words) != 2 or words[0] not in GIT_COMMANDS:
            return None
        path = (self.root / words[1].lstrip("/")).resolve()
        if not path.is_relative_to(self.root) or not path.is_dir():
            return None
        return path
