"""RemoteMirror against a real smart-HTTP git server on loopback, with Basic auth."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import pygit2

from gitstage.adapters.git.credentials import GitCredentials
from gitstage.adapters.git.reader import Registry
from gitstage.adapters.mirror.remote_mirror import RemoteMirror, Timeouts
from gitstage.dev.git_server import BasicAuth
from gitstage.domain.registry.views import stage_view
from tests.poller.conftest import BASE, PASSWORD, USER, Remote, git_as_ana, make_registry, weights
from tests.support.fast_import import CommitSpec, FastImport, Stamp, TagSpec, init_repo
from tests.support.git_server import CountingGitServer

WEIGHTS_BYTES = len(weights("x"))


def holders(registry: Registry, stage: str, artifact: str = "churn") -> list[str]:
    view = stage_view(registry.state.artifacts[artifact])
    return [vstage.version for vstage in view.get(stage, [])]


def annotation_path(registry: Registry, version: str) -> str | None:
    found = [v for v in registry.state.artifacts["churn"].versions if v.name == version]
    annotation = found[0].commit_events[-1].annotation
    return annotation.path if annotation else None


def delta(before: Counter[str], server: CountingGitServer) -> dict[str, int]:
    return {k: v for k, v in (server.commands - before).items() if v}


def has_object(mirror: RemoteMirror, sha: str) -> bool:
    return sha in pygit2.Repository(str(mirror.path))


def blob_at(remote: Remote, commit: str, path: str) -> str:
    return remote.clone.git("rev-parse", f"{commit}:{path}")


def test_first_sync_is_blobless_but_reads_every_artifacts_yaml(
    remote: Remote, credentials: GitCredentials, tmp_path: Path
) -> None:
    mirror = RemoteMirror(remote.url, credentials, tmp_path / "cache")
    result = mirror.sync()
    assert result.changed
    assert result.head == remote.clone.commits["two"]
    registry = mirror.registry()
    assert registry.head == remote.clone.commits["two"]
    assert holders(registry, "prod") == ["v1.0.0"]
    assert annotation_path(registry, "v1.0.0") == "models/churn.pkl"
    assert annotation_path(registry, "v2.0.0") == "models/churn.pkl"
    for label in ("one", "two"):  # the model files never travel
        assert not has_object(mirror, blob_at(remote, remote.clone.commits[label], "weights.bin"))
    assert remote.server.stats.bytes_sent < WEIGHTS_BYTES / 4
    assert (mirror.counters.ref_listings, mirror.counters.fetches) == (1, 1)
    # One checked-out file: the cache stays bare, HEAD on the branch.
    assert pygit2.Repository(str(mirror.path)).is_bare


def test_idle_sync_costs_one_ref_listing_and_nothing_else(
    remote: Remote, credentials: GitCredentials, tmp_path: Path
) -> None:
    mirror = RemoteMirror(remote.url, credentials, tmp_path / "cache")
    first = mirror.sync()
    commands, sent = remote.server.commands.copy(), remote.server.stats.bytes_sent
    requests, denied = remote.server.stats.requests, remote.server.stats.denied
    again = mirror.sync()
    assert not again.changed
    assert again.digest == first.digest
    assert again.head == first.head
    assert again.synced_at == first.synced_at
    assert delta(commands, remote.server) == {"ls-refs": 1}
    # Basic credentials are sent up front: no unauthenticated request answered with 401.
    assert remote.server.stats.requests - requests == 2  # GET info/refs, POST ls-refs
    assert remote.server.stats.denied == denied
    assert remote.server.stats.bytes_sent - sent < 2_000
    assert mirror.counters.ref_listings == 2
    assert (mirror.counters.fetches, mirror.counters.blob_fetches) == (1, 1)


def test_list_refs_reports_tags_head_and_a_digest_that_follows_pushes(
    remote: Remote, credentials: GitCredentials, tmp_path: Path
) -> None:
    mirror = RemoteMirror(remote.url, credentials, tmp_path / "cache")
    refs = mirror.list_refs()
    assert sorted(refs.tags) == ["churn#prod#1", "churn@v1.0.0", "churn@v2.0.0"]
    tag_object = remote.clone.git("rev-parse", "refs/tags/churn#prod#1")
    assert refs.tags["churn#prod#1"] == tag_object  # the tag object, not the peeled commit
    assert refs.head == remote.clone.commits["two"]
    assert mirror.list_refs().digest == refs.digest
    remote.clone.tag("churn#dev#1", BASE + 40)
    remote.clone.push("refs/tags/churn#dev#1")
    assert mirror.list_refs().digest != refs.digest
    assert remote.server.commands["fetch"] == 0


def test_pushed_stage_tag_is_fetched_and_resolved(
    remote: Remote, credentials: GitCredentials, tmp_path: Path
) -> None:
    mirror = RemoteMirror(remote.url, credentials, tmp_path / "cache")
    mirror.sync()
    remote.clone.tag("churn#prod#2", BASE + 50, target=remote.clone.commits["two"])
    remote.clone.push("refs/tags/churn#prod#2")
    commands, sent = remote.server.commands.copy(), remote.server.stats.bytes_sent
    result = mirror.sync()
    assert result.changed
    assert holders(mirror.registry(), "prod") == ["v2.0.0"]
    # ls-remote, then one fetch by SHA (no second listing); artifacts.yaml unchanged: no blobs.
    assert delta(commands, remote.server) == {"ls-refs": 1, "fetch": 1}
    assert mirror.counters.blob_fetches == 1  # only the first sync's
    assert remote.server.stats.bytes_sent - sent < 4_000


def test_new_commit_brings_only_its_artifacts_yaml(
    remote: Remote, credentials: GitCredentials, tmp_path: Path
) -> None:
    mirror = RemoteMirror(remote.url, credentials, tmp_path / "cache")
    mirror.sync()
    index = "churn:\n  type: model\n  path: models/churn-v3.pkl\n"
    three = remote.clone.commit(
        "three", {"artifacts.yaml": index, "weights.bin": weights("3")}, BASE + 60
    )
    remote.clone.tag("churn@v3.0.0", BASE + 61)
    remote.clone.tag("churn#prod#3", BASE + 62)
    remote.clone.push("main", "refs/tags/churn@v3.0.0", "refs/tags/churn#prod#3")
    commands = remote.server.commands.copy()
    result = mirror.sync()
    assert result.changed
    assert result.head == three
    registry = mirror.registry()
    assert holders(registry, "prod") == ["v3.0.0"]
    assert annotation_path(registry, "v3.0.0") == "models/churn-v3.pkl"
    assert annotation_path(registry, "v1.0.0") == "models/churn.pkl"
    assert has_object(mirror, blob_at(remote, three, "artifacts.yaml"))
    assert not has_object(mirror, blob_at(remote, three, "weights.bin"))
    assert delta(commands, remote.server) == {"ls-refs": 1, "fetch": 2}
    assert mirror.counters.blob_fetches == 2


def test_a_tag_deleted_on_the_remote_disappears_from_the_cache(
    remote: Remote, credentials: GitCredentials, tmp_path: Path
) -> None:
    mirror = RemoteMirror(remote.url, credentials, tmp_path / "cache")
    mirror.sync()
    assert holders(mirror.registry(), "prod") == ["v1.0.0"]
    remote.clone.delete_remote_tag("churn#prod#1")
    commands = remote.server.commands.copy()
    assert mirror.sync().changed
    assert delta(commands, remote.server) == {"ls-refs": 1}  # nothing to download
    cache = pygit2.Repository(str(mirror.path))
    assert "refs/tags/churn#prod#1" not in cache.references
    assert "refs/tags/churn@v1.0.0" in cache.references
    assert holders(mirror.registry(), "prod") == []


def test_a_second_process_syncing_the_same_cache_does_not_mislead_the_first(
    remote: Remote, credentials: GitCredentials, tmp_path: Path
) -> None:
    """A mirror looks only at the tags changed since its own last sync, while the cache is
    still as it left it; after another process moved the cache's refs, it reads them again."""
    first = RemoteMirror(remote.url, credentials, tmp_path / "cache")
    first.sync()
    remote.clone.tag("churn#prod#2", BASE + 50, target=remote.clone.commits["two"])
    remote.clone.push("refs/tags/churn#prod#2")
    second = RemoteMirror(remote.url, credentials, tmp_path / "cache")  # e.g. `gitstage show`
    assert second.sync().changed
    remote.clone.delete_remote_tag("churn#prod#2")
    remote.clone.delete_remote_tag("churn#prod#1")
    remote.clone.tag("churn#staging#1", BASE + 60, target=remote.clone.commits["two"])
    remote.clone.push("refs/tags/churn#staging#1")
    assert first.sync().changed
    assert refs_of(first.path) == refs_of(remote.clone.bare)
    assert holders(first.registry(), "prod") == []
    assert holders(first.registry(), "staging") == ["v2.0.0"]


def test_lightweight_and_non_gto_tags_do_not_break_the_sync(
    remote: Remote, credentials: GitCredentials, tmp_path: Path
) -> None:
    remote.clone.git("tag", "churn#dev#7")  # lightweight: GTO ignores it
    remote.clone.tag("release-2024", BASE + 70)
    remote.clone.push("--tags")
    mirror = RemoteMirror(remote.url, credentials, tmp_path / "cache")
    assert mirror.sync().changed
    registry = mirror.registry()
    assert holders(registry, "dev") == []
    assert holders(registry, "prod") == ["v1.0.0"]


def listing_bytes(remote: Remote, mirror: RemoteMirror) -> int:
    """What one ref listing of the remote costs, in bytes served."""
    sent = remote.server.stats.bytes_sent
    mirror.list_refs()
    return remote.server.stats.bytes_sent - sent


def test_the_listing_skips_refs_other_than_tags_and_branches(
    remote: Remote, credentials: GitCredentials, tmp_path: Path
) -> None:
    mirror = RemoteMirror(remote.url, credentials, tmp_path / "cache")
    first = mirror.sync()
    before = listing_bytes(remote, mirror)
    # A forge's pull-request refs: many, and none of our business.
    for number in range(1, 41):
        remote.clone.push(f"{remote.clone.commits['one']}:refs/pull/{number}/head")
    assert listing_bytes(remote, mirror) == before
    assert mirror.list_refs().digest == first.digest


def test_a_new_instance_reuses_the_persistent_cache(
    remote: Remote, credentials: GitCredentials, tmp_path: Path
) -> None:
    for n in range(30):  # some history, so that "everything" weighs more than a ref listing
        remote.clone.commit(f"c{n}", {"notes.txt": f"run {n}\n" * 200}, BASE + 100 + n)
        remote.clone.tag(f"churn@v0.{n}.0", BASE + 200 + n)
    remote.clone.push("main", "--tags")
    first = RemoteMirror(remote.url, credentials, tmp_path / "cache")
    synced = first.sync()
    full = remote.server.stats.bytes_sent
    listing = listing_bytes(remote, first)
    assert full > 3 * listing
    # A restarted operator: a new object on the same directory.
    second = RemoteMirror(remote.url, credentials, tmp_path / "cache")
    assert second.path == first.path
    commands, sent = remote.server.commands.copy(), remote.server.stats.bytes_sent
    again = second.sync()
    assert not again.changed
    assert again.synced_at == synced.synced_at  # "last changed" survives the restart
    assert delta(commands, remote.server) == {"ls-refs": 1}
    assert remote.server.stats.bytes_sent - sent == listing  # the listing, not one byte more
    assert holders(second.registry(), "prod") == ["v1.0.0"]
    # A push while "down": the next start fetches only the new tag object.
    remote.clone.tag("churn#prod#2", BASE + 300, target=remote.clone.commits["two"])
    remote.clone.push("refs/tags/churn#prod#2")
    third = RemoteMirror(remote.url, credentials, tmp_path / "cache")
    sent = remote.server.stats.bytes_sent
    assert third.sync().changed
    pack = remote.server.stats.bytes_sent - sent - listing_bytes(remote, third)
    assert pack < 1_500
    assert holders(third.registry(), "prod") == ["v2.0.0"]


def test_a_server_without_filter_support_gets_a_full_fetch(tmp_path: Path) -> None:
    clone = make_registry(tmp_path, allow_filter=False)
    server = CountingGitServer(clone.bare.parent, auth=BasicAuth(USER, PASSWORD))
    server.start()
    try:
        mirror = RemoteMirror(
            server.url("registry.git"),
            GitCredentials(USER, PASSWORD),
            tmp_path / "cache",
            timeouts=Timeouts(ls_remote=20, fetch=60, blobs=60),
        )
        assert mirror.sync().changed
        registry = mirror.registry()
        assert holders(registry, "prod") == ["v1.0.0"]
        assert annotation_path(registry, "v2.0.0") == "models/churn.pkl"
        weights_blob = clone.git("rev-parse", f"{clone.commits['one']}:weights.bin")
        assert has_object(mirror, weights_blob)  # the filter was ignored: everything came
        assert mirror.counters.blob_fetches == 0
        assert server.stats.bytes_sent > WEIGHTS_BYTES / 4
    finally:
        server.stop()


def test_caches_are_separate_per_credentials_and_branch(
    remote: Remote, credentials: GitCredentials, tmp_path: Path
) -> None:
    root = tmp_path / "cache"
    base = RemoteMirror(remote.url, credentials, root)
    other_user = RemoteMirror(remote.url, GitCredentials("bob", PASSWORD), root)
    other_branch = RemoteMirror(remote.url, credentials, root, "release")
    same = RemoteMirror(remote.url, GitCredentials(USER, PASSWORD), root)
    assert len({base.path, other_user.path, other_branch.path}) == 3
    assert same.path == base.path
    assert PASSWORD not in str(base.path)


def test_thousands_of_tags_sync_exactly_in_batches(tmp_path: Path) -> None:
    """Ref updates go in batches of 500: every ref arrives, and mass deletion is mirrored."""
    work, root = tmp_path / "work", tmp_path / "srv"
    init_repo(work)
    index = "churn:\n  path: models/churn.pkl\n"
    with FastImport(work) as stream:
        for n in range(600):
            stream.commit(
                CommitSpec(n + 1, Stamp(BASE + 10 * n), f"c{n}", {"artifacts.yaml": index})
            )
            stream.tag(TagSpec(f"churn@v{n // 100}.{n % 100}.0", n + 1, Stamp(BASE + 10 * n + 1)))
            stream.tag(TagSpec(f"churn#dev#{n}", n + 1, Stamp(BASE + 10 * n + 2)))
        stream.close()
    bare = root / "registry.git"
    git_as_ana(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    git_as_ana(bare, "config", "uploadpack.allowFilter", "true")
    server = CountingGitServer(root, auth=BasicAuth(USER, PASSWORD))
    server.start()
    try:
        mirror = RemoteMirror(
            server.url("registry.git"), GitCredentials(USER, PASSWORD), tmp_path / "c"
        )
        mirror.sync()
        assert refs_of(mirror.path) == refs_of(bare)
        assert len(refs_of(bare)) == 1201
        assert len(mirror.registry().state.artifacts["churn"].versions) == 600
        doomed = [f"delete refs/tags/churn#dev#{n}\n" for n in range(550)]
        subprocess.run(
            ["git", "-C", str(bare), "update-ref", "--stdin"],
            input="".join(doomed),
            text=True,
            check=True,
        )
        assert mirror.sync().changed
        assert refs_of(mirror.path) == refs_of(bare)
        assert server.commands["fetch"] == 2  # the first sync's objects and blobs; none since
    finally:
        server.stop()


def refs_of(repo: Path) -> dict[str, str]:
    listing = git_as_ana(repo, "for-each-ref", "--format=%(refname) %(objectname)")
    return dict(line.split(" ") for line in listing.splitlines())


def test_a_blobless_sync_brings_the_policy_and_the_keys_it_names(
    remote: Remote, credentials: GitCredentials, tmp_path: Path
) -> None:
    # The key file sits outside `.gitstage/`: its path is only known once the policy is read.
    policy = "allowed_signers: keys/signers\nrules:\n  prod:\n    signed_by: [rel@example.com]\n"
    signers = "rel@example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBqL3w7w\n"
    files = {".gitstage/policy.yaml": policy, "keys/signers": signers}
    (remote.clone.work / ".gitstage").mkdir()
    (remote.clone.work / "keys").mkdir()
    head = remote.clone.commit("policy", files, BASE + 40)
    remote.clone.push("main")
    mirror = RemoteMirror(remote.url, credentials, tmp_path / "cache")
    mirror.sync()
    for path in files:
        assert has_object(mirror, blob_at(remote, head, path))
    assert mirror.counters.blob_fetches == 2  # index and policy; then the key file it names
    evaluator = mirror.policy(mirror.registry())
    assert evaluator is not None
    assert evaluator.policy.allowed_signers == "keys/signers"
    assignment = next(
        event
        for version in evaluator.state.artifacts["churn"].versions
        for event in version.events()
        if event.tag == "churn#prod#1"
    )
    violation = evaluator.violation(assignment)
    assert violation is not None
    assert violation.message.startswith("not signed")
