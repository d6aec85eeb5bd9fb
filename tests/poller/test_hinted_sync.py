"""A sync of the refs a webhook named: only those are read from the remote, the cache ends exactly
as a full sync would leave it, and a full poll follows to catch what the forge did not name."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pygit2
import pytest

from gitstage.adapters.git.credentials import GitCredentials
from gitstage.adapters.mirror import poller as poller_module
from gitstage.adapters.mirror.poll_types import RegistrySnapshot, Source
from gitstage.adapters.mirror.poller import PollerHub
from gitstage.adapters.mirror.remote_mirror import RemoteMirror
from gitstage.domain.registry.views import stage_view
from tests.poller.conftest import BASE, Remote
from tests.poller.test_hub import HOUR, Collector, eventually, idle_after, only, prod, run

FILLER = 300  # tags that make a full listing far bigger than a partial one


def cache_tags(mirror: RemoteMirror) -> dict[str, str]:
    repo = pygit2.Repository(str(mirror.path))
    prefix = "refs/tags/"
    return {
        ref.name[len(prefix) :]: str(ref.target)
        for ref in repo.listall_reference_objects()
        if ref.name.startswith(prefix)
    }


def remote_tags(remote: Remote) -> dict[str, str]:
    out = subprocess.run(
        ["git", "-C", str(remote.clone.bare), "for-each-ref", "--format=%(refname) %(objectname)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pairs = (line.split(" ") for line in out.splitlines())
    return {ref.removeprefix("refs/tags/"): sha for ref, sha in pairs if ref.startswith("refs/t")}


def add_filler(remote: Remote) -> None:
    for number in range(FILLER):
        remote.clone.git("tag", f"filler#dev#{number}")
    remote.clone.push("--tags")


def push_tag(remote: Remote, name: str, date: int) -> None:
    remote.clone.tag(name, date, target=remote.clone.commits["two"])
    remote.clone.push(f"refs/tags/{name}")


@pytest.fixture
def mirror(remote: Remote, credentials: GitCredentials, tmp_path: Path) -> RemoteMirror:
    add_filler(remote)
    synced = RemoteMirror(remote.url, credentials, tmp_path / "cache")
    synced.sync()
    return synced


def test_a_named_tag_is_read_alone_and_ends_as_a_full_sync_would(
    remote: Remote, mirror: RemoteMirror
) -> None:
    sent = remote.server.stats.bytes_sent
    mirror.list_refs()
    full_listing = remote.server.stats.bytes_sent - sent
    push_tag(remote, "churn#prod#2", BASE + 50)
    push_tag(remote, "churn#dev#1", BASE + 51)  # pushed too, but the webhook names only one
    sent = remote.server.stats.bytes_sent
    result = mirror.sync(["refs/tags/churn#prod#2"])
    assert result.partial
    assert result.changed
    assert remote.server.stats.bytes_sent - sent < full_listing / 4
    assert "churn#prod#2" in result.refs.tags
    assert "churn#dev#1" not in result.refs.tags
    assert cache_tags(mirror) == dict(result.refs.tags)
    assert _prod(mirror) == ["v2.0.0"]
    # Git fetched through a directory of its own that keeps no tag (each would slow a fetch).
    fetch_dir = pygit2.Repository(str(mirror.path.parent / f"{mirror.id}.fetch"))
    assert fetch_dir.listall_references() == ["refs/heads/main"]
    # The full poll that follows finds the other tag, and then agrees with a listing.
    full = mirror.sync()
    assert not full.partial
    assert full.changed
    assert dict(full.refs.tags) == remote_tags(remote) == cache_tags(mirror)
    assert mirror.list_refs().digest == full.digest
    assert not mirror.sync().changed


def test_a_partial_sync_of_an_unchanged_remote_has_a_full_listings_digest(
    remote: Remote, mirror: RemoteMirror
) -> None:
    listed = mirror.list_refs()
    result = mirror.sync(["refs/tags/churn#prod#1", "refs/heads/main"])
    assert result.partial
    assert result.digest == listed.digest
    assert not mirror.sync().changed  # the state it wrote is the full listing's


def test_a_named_deleted_tag_and_deleted_look_alikes_leave_the_cache(
    remote: Remote, mirror: RemoteMirror
) -> None:
    push_tag(remote, "churn#prod#10", BASE + 60)
    mirror.sync()
    remote.clone.delete_remote_tag("churn#prod#1")
    remote.clone.delete_remote_tag("churn#prod#10")  # shares the named tag's prefix
    result = mirror.sync(["refs/tags/churn#prod#1"])
    assert result.partial
    assert "churn#prod#1" not in result.refs.tags
    assert "churn#prod#10" not in result.refs.tags
    assert cache_tags(mirror) == dict(result.refs.tags) == remote_tags(remote)
    assert mirror.list_refs().digest == result.digest


@pytest.mark.parametrize(
    "hints",
    [
        ["refs/heads/other"],
        ["(deleted)"],
        ["refs/tags/churn#prod#1~"],  # not a valid ref name: maybe truncated
        [f"refs/tags/t{n}" for n in range(40)],  # more than a partial sync takes
    ],
)
def test_hints_a_partial_sync_cannot_serve_list_every_ref(
    remote: Remote, mirror: RemoteMirror, hints: list[str]
) -> None:
    push_tag(remote, "churn#prod#2", BASE + 50)
    listings = remote.server.commands["ls-refs"]
    result = mirror.sync(hints)
    assert not result.partial
    assert remote.server.commands["ls-refs"] == listings + 1
    assert "churn#prod#2" in result.refs.tags


def test_a_new_process_lists_everything_even_when_named_refs_are_given(
    remote: Remote, mirror: RemoteMirror, credentials: GitCredentials, tmp_path: Path
) -> None:
    push_tag(remote, "churn#prod#2", BASE + 50)
    fresh = RemoteMirror(remote.url, credentials, tmp_path / "cache")
    result = fresh.sync(["refs/tags/churn#prod#2"])
    assert not result.partial  # it cannot know the cache's refs are the state's
    assert dict(result.refs.tags) == remote_tags(remote) == cache_tags(fresh)


def test_a_crash_after_the_refs_moved_cannot_hide_them_from_the_next_process(
    remote: Remote,
    mirror: RemoteMirror,
    credentials: GitCredentials,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    push_tag(remote, "churn#prod#2", BASE + 50)

    def crash(*_: object) -> None:
        raise SystemExit("killed between the ref moves and the state")

    monkeypatch.setattr(RemoteMirror, "_keep_head_config", crash)
    with pytest.raises(SystemExit):
        mirror.sync(["refs/tags/churn#prod#2"])
    monkeypatch.undo()
    assert "churn#prod#2" in cache_tags(mirror)  # moved before the crash
    # The remote goes back to the state the cache had last recorded...
    remote.clone.delete_remote_tag("churn#prod#2")
    after = RemoteMirror(remote.url, credentials, tmp_path / "cache")
    result = after.sync()
    # ...and the next process still compares the refs instead of trusting that state.
    assert cache_tags(after) == remote_tags(remote) == dict(result.refs.tags)


def test_a_webhook_request_reads_named_refs_and_a_full_poll_follows(
    remote: Remote,
    credentials: GitCredentials,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(poller_module, "CONFIRM_AFTER", 0.5)

    async def scenario(hub: PollerHub) -> None:
        seen = Collector()
        hub.subscribe("ns/a", Source(remote.url), credentials, HOUR, seen)
        await seen.snapshot()
        listings = remote.server.commands["ls-refs"]
        push_tag(remote, "churn#prod#2", BASE + 50)
        push_tag(remote, "churn#dev#1", BASE + 51)  # not named
        assert hub.request("ns/a", ["refs/tags/churn#prod#2"])
        named = await seen.snapshot(2)
        assert prod(named) == ["v2.0.0"]
        assert "dev" not in _stages(named)
        assert remote.server.commands["ls-refs"] == listings + 1  # the fetch's, narrowed
        # Half a second later the full poll lists everything and brings the other tag.
        confirmed = await seen.snapshot(3)
        assert "dev" in _stages(confirmed)
        await eventually(idle_after(hub, 3), "the full poll to end")
        # Nothing else is due within the hour: no poll in twice the confirmation delay.
        await asyncio.sleep(2 * poller_module.CONFIRM_AFTER)
        assert only(hub).polls == 3

    run(scenario, tmp_path / "cache")


def _stages(snapshot: RegistrySnapshot) -> set[str]:
    return set(stage_view(snapshot.registry.state.artifacts["churn"]))


def _prod(mirror: RemoteMirror) -> list[str]:
    view = stage_view(mirror.registry().state.artifacts["churn"])
    return [vstage.version for vstage in view.get("prod", [])]
