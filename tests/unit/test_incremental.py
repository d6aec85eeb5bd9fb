"""Incremental reads answer exactly what a full read answers, after every kind of tag change.

For seeded random histories (the differential test's generator, which gto 1.10.1 checks), the
tags are taken away and put back in random batches, some moved, some deleted again, HEAD and
`.gto` changed; after each step the operator's `IncrementalReader` and the CLI's row cache
(`show --json` through `show_json_text`) are compared with a full read without any cache: the
same documents for every view, or the same error. The tests also check that only the changed
artifacts were refolded, so the cache does not pass by always refolding everything.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from random import Random

import pytest

from gitstage.adapters.git import incremental, refdb, result_cache
from gitstage.adapters.git.incremental import IncrementalReader
from gitstage.adapters.git.loose_objects import loose_tag_row
from gitstage.adapters.git.reader import READ_ERRORS, Registry, read_source
from gitstage.adapters.git.refdb import PackedRefsMemo
from gitstage.adapters.git.source import open_source
from gitstage.domain.registry.gto_json import registry_document, versions_document
from gitstage.domain.registry.partition import (
    Partition,
    group_digest,
    group_of,
    group_tags,
    with_head_artifacts,
)
from gitstage.domain.registry.views import ViewOptions, list_versions
from gitstage.reading import ShowRequest, compute_json_text, show_json_text
from tests.conformance.history import Crash, random_history, write

OPTIONS = (
    ViewOptions(),
    ViewOptions.from_flags(True, True, 1, -1, "semver"),
    ViewOptions.from_flags(False, True, -1, 2, "timestamp"),
)


def documents(registry: Registry) -> str:
    """Every view of the state, as one comparable text."""
    state, stages = registry.state, registry.config.stages
    parts: list[object] = [list(state.artifacts)]
    for options in OPTIONS:
        parts.append(registry_document(state, options, stages))
        for artifact in state.artifacts.values():
            parts.append(versions_document(list_versions(artifact, options)))
    return json.dumps(parts, indent=1)


def outcome(read: object) -> str:
    try:
        return documents(read()) if callable(read) else str(read)
    except READ_ERRORS as error:
        return f"{type(error).__name__}: {error}"


def full_text(path: Path) -> str:
    try:
        return compute_json_text(open_source(path), ShowRequest(repo=str(path)))[0]
    except READ_ERRORS as error:
        return f"{type(error).__name__}: {error}"


def cli_text(path: Path) -> str:
    try:
        return show_json_text(ShowRequest(repo=str(path)))
    except READ_ERRORS as error:
        return f"{type(error).__name__}: {error}"


def refs(path: Path) -> dict[str, str]:
    out = subprocess.run(
        [
            "git",
            "-C",
            str(path),
            "for-each-ref",
            "--format=%(refname:strip=2) %(objectname)",
            "refs/tags",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split(" ", 1) for line in out.splitlines())


def set_refs(path: Path, changes: dict[str, str | None]) -> None:
    """Create, move (to the object given) or delete (None) tag refs in one transaction."""
    lines = [
        f"delete refs/tags/{name}\n" if oid is None else f"update refs/tags/{name} {oid}\n"
        for name, oid in changes.items()
    ]
    subprocess.run(
        ["git", "-C", str(path), "update-ref", "--stdin"],
        input="".join(lines),
        text=True,
        check=True,
    )


class Checker:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.reader = IncrementalReader()

    def check(self, step: str) -> None:
        full = outcome(lambda: read_source(open_source(self.path)))
        memo = self.reader.packed_refs
        assert outcome(lambda: self.reader.read(open_source(self.path, memo))) == full, step
        assert cli_text(self.path) == full_text(self.path), step


@pytest.mark.parametrize(("seed", "large"), [*((s, False) for s in range(6)), (6, True)])
def test_incremental_reads_equal_full_reads_through_random_tag_changes(
    tmp_path: Path, seed: int, large: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if large:  # reads of a few tags skip the object cache file, as on a 20,000-tag registry
        monkeypatch.setattr(incremental, "LARGE_REGISTRY_TAGS", 0)
    history = random_history(seed)
    written = write(history, tmp_path / "registry")
    path, rng = written.path, Random(seed)
    everything = refs(path)
    names = sorted(everything)
    rng.shuffle(names)
    kept = names[: len(names) // 3]
    set_refs(path, dict.fromkeys(names[len(kept) :]))
    checker = Checker(path)
    checker.check("a third of the tags")
    pending = names[len(kept) :]
    while pending:
        size = rng.randint(1, 4)
        batch, pending = pending[:size], pending[size:]
        set_refs(path, {name: everything[name] for name in batch})
        checker.check(f"added {batch}")
        present = list(refs(path))
        if rng.random() < 0.3 and len(present) > 2:
            victim = rng.choice(present)
            set_refs(path, {victim: None})
            checker.check(f"deleted {victim}")
            set_refs(path, {victim: everything[victim]})
            checker.check(f"restored {victim}")
        if rng.random() < 0.2 and len(present) > 2:
            moved, other = rng.sample(present, 2)
            set_refs(path, {moved: everything[other]})  # a tag re-pointed (force-pushed)
            checker.check(f"moved {moved} to {other}'s object")
            set_refs(path, {moved: everything[moved]})
            checker.check(f"moved {moved} back")
        if rng.random() < 0.15:
            pack_refs(path)  # the reader's memo of packed-refs must notice the new file
            checker.check("refs packed")
    assert refs(path) == everything


def pack_refs(path: Path) -> None:
    """`git pack-refs --all`, the file then aged past the racy window so readers memoize it."""
    subprocess.run(["git", "-C", str(path), "pack-refs", "--all", "--prune"], check=True)
    common = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "--path-format=absolute", "--git-common-dir"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    packed = Path(common) / "packed-refs"
    aged = packed.stat().st_mtime - 60
    os.utime(packed, (aged, aged))


@pytest.mark.parametrize("crash", list(Crash))
def test_a_change_that_breaks_the_registry_gives_the_full_reads_error(
    tmp_path: Path, crash: Crash
) -> None:
    history = random_history(3, crash)
    written = write(history, tmp_path / "registry")
    path = written.path
    everything = refs(path)
    offending = [n for n in everything if n in history.offending] or list(everything)[-1:]
    set_refs(path, dict.fromkeys(offending))
    checker = Checker(path)
    checker.check("before the offending tags")
    set_refs(path, {name: everything[name] for name in offending})
    checker.check("with them")
    set_refs(path, dict.fromkeys(offending))
    checker.check("without them again")


def test_a_new_stage_tag_refolds_only_its_artifact(tmp_path: Path) -> None:
    history = random_history(1)
    written = write(history, tmp_path / "registry")
    path = written.path
    everything = refs(path)
    groups = group_tags(everything)
    assert len(groups) > 2
    reader = IncrementalReader()
    reader.read(open_source(path))
    assert reader.refolded >= len(groups)
    reader.read(open_source(path))
    assert reader.refolded == 0
    name = max(everything, key=lambda n: ("#" in n, n))
    set_refs(path, {name: None})
    reader.read(open_source(path))
    assert reader.refolded == 1
    set_refs(path, {name: everything[name]})
    assert documents(reader.read(open_source(path))) == documents(read_source(open_source(path)))
    assert reader.refolded == 1


def test_head_and_gto_changes_refold_everything(tmp_path: Path) -> None:
    written = write(random_history(2), tmp_path / "registry")
    path = written.path
    reader = IncrementalReader()
    reader.read(open_source(path))
    groups = len(group_tags(refs(path)))
    (path / ".gto").write_text("stages: [dev, prod]\n")
    assert documents(reader.read(open_source(path))) == documents(read_source(open_source(path)))
    assert reader.refolded >= groups
    assert cli_text(path) == full_text(path)
    subprocess.run(["git", "-C", str(path), "checkout", "-q", written.commits[0]], check=True)
    assert documents(reader.read(open_source(path))) == documents(read_source(open_source(path)))
    assert reader.refolded >= groups
    assert cli_text(path) == full_text(path)


def test_the_row_cache_is_off_with_the_result_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = write(random_history(0), tmp_path / "registry")
    monkeypatch.setenv(result_cache.RESULT_ENV, "off")
    assert cli_text(written.path) == full_text(written.path)
    assert not (written.path / ".git" / "gitstage" / "rows-v1.cache").exists()


def test_a_corrupt_row_cache_is_ignored(tmp_path: Path) -> None:
    written = write(random_history(4), tmp_path / "registry")
    path = written.path
    assert cli_text(path) == full_text(path)
    rows = path / ".git" / "gitstage" / "rows-v1.cache"
    data = bytearray(rows.read_bytes())
    data[-3] ^= 0xFF
    rows.write_bytes(bytes(data))
    name = next(iter(refs(path)))
    set_refs(path, {name: None})
    assert cli_text(path) == full_text(path)


def test_group_of_is_the_artifact_part_of_every_gto_tag() -> None:
    assert group_of("churn@v1.0.0") == "churn"
    assert group_of("dir=sub/churn#prod#3") == "dir=sub/churn"
    assert group_of("a.b/c_d=Model_X#prod!#2") == "a.b/c_d=Model_X"
    assert group_of("m@deprecated#1") == "m"
    assert group_tags({"v1.0.0": "x", "release": "y", "m#dev": "z"}) == {"m": {"m#dev": "z"}}


def test_loose_tags_parse_as_libgit2_reads_them(tmp_path: Path) -> None:
    """Every tag of a history, unpacked into loose objects, gives libgit2's row or defers."""
    import pygit2

    written = write(random_history(5), tmp_path / "registry")
    path = written.path
    for pack in (path / ".git" / "objects" / "pack").glob("*.pack"):  # small imports are loose
        moved = tmp_path / pack.name
        pack.rename(moved)
        pack.with_suffix(".idx").unlink()
        with moved.open("rb") as stream:
            unpack = ["git", "-C", str(path), "unpack-objects", "-q"]
            subprocess.run(unpack, stdin=stream, check=True)
    repo = pygit2.Repository(str(path))
    parsed = deferred = 0
    for oid in set(refs(path).values()):
        known, row = loose_tag_row(str(path / ".git"), oid)
        if not known:
            deferred += 1
            continue
        parsed += 1
        obj = repo.get(oid)
        expected = None
        if isinstance(obj, pygit2.Tag) and obj.tagger is not None:
            t = obj.tagger
            expected = (str(obj.target), t.name, t.email, t.time, t.offset * 60, obj.message)
        assert row == expected, oid
    assert parsed > deferred


def test_packed_refs_are_parsed_again_only_when_the_file_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = write(random_history(1), tmp_path / "registry")
    path = written.path
    pack_refs(path)
    parses: list[int] = []
    real_parse = refdb._parse_packed_tags

    def counting(packed: bytes, where: str) -> dict[str, str]:
        parses.append(len(packed))
        return real_parse(packed, where)

    monkeypatch.setattr(refdb, "_parse_packed_tags", counting)
    memo = PackedRefsMemo()
    first = open_source(path, memo).tags
    assert open_source(path, memo).tags == first
    assert len(parses) == 1  # the second read took the memo
    name, oid = next(iter(first.items()))
    set_refs(path, {name: None})  # deleting a packed ref rewrites packed-refs
    assert name not in open_source(path, memo).tags
    assert len(parses) == 2
    set_refs(path, {name: oid})  # a loose ref beside the packed file: no new parse
    assert open_source(path, memo).tags == first
    assert len(parses) == 3  # the rewritten file was too recent to memoize...
    pack_refs(path)
    open_source(path, memo)
    assert open_source(path, memo).tags == first == open_source(path).tags
    assert len(parses) == 5  # ...an aged one is parsed once (and once without the memo)


@pytest.mark.parametrize("seed", range(4))
def test_a_partition_updated_tag_by_tag_equals_one_grouped_anew(seed: int) -> None:
    rng = Random(seed)
    names = [
        f"{artifact}{sep}{rest}"
        for artifact in ("churn", "nlp/churn", "fraud", "x")
        for sep, rest in (("@", "v1.0.0"), ("#", "prod#1"), ("#", "dev!#2"), ("@", "v2#x"))
    ] + ["no-separator", "@leading", "#hash-only"]
    head = ["churn", "unreleased"]
    partition, tags = Partition(), {}
    for _ in range(60):
        for name in rng.sample(names, rng.randint(1, 4)):
            if name in tags and rng.random() < 0.4:
                del tags[name]
            else:
                tags[name] = f"{rng.getrandbits(160):040x}"
        partition.update(dict(tags), head)
        grouped = with_head_artifacts(group_tags(tags), head)
        assert partition.groups == grouped
        assert partition.digests == {g: group_digest(m) for g, m in grouped.items()}
