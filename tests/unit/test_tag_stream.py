"""Tag objects streamed by `git cat-file --batch` (tag_stream.py) and parsed from raw text
(raw_tags.py) give exactly libgit2's rows, or are left to libgit2; a read through the stream
answers what a read through libgit2 answers, errors included.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Collection
from pathlib import Path

import pygit2
import pytest

from gitstage.adapters.git import reader, tag_stream
from gitstage.adapters.git.object_cache import Row
from gitstage.adapters.git.raw_tags import parse_tag_body
from gitstage.adapters.git.reader import READ_ERRORS
from gitstage.adapters.git.tag_records import RecordParser
from gitstage.adapters.git.tag_stream import TagStream, streamable
from gitstage.reading import ShowRequest, show_json_text
from tests.conformance.history import random_history, write
from tests.unit.test_hostile_registries import registry, stage_tag_object_missing
from tests.unit.test_incremental import Checker, refs, set_refs

HASH_OBJECT = ("hash-object", "-t", "tag", "-w", "--stdin", "--literally")
# Tag texts around the plain form: each is parsed as libgit2 reads it, or deferred.
ODD_TAGS = (
    "tagger a b <e> 1700000000 +0530\n\nmsg\n",
    "tagger a b <e> 1700000000 +9959\n\nlibgit2 reads this zone as UTC, GTO as written\n",
    "tagger a b <e> 1700000000 -0160\n\nand this one\n",
    "tagger a b <e> 1700000000 -0000\n\n",
    "tagger a b <e> 1700000000 -0000\n\nm\0sg after a NUL\n",
    "\nno tagger\n",
    "tagger  a <e> 1 +0000\n\nuntrimmed name\n",
    "tagger a < e> 1 +0000\n\nuntrimmed email\n",
    "tagger a <e> 1 +0000\ngpgsig x\n\nanother header\n",
    "tagger a <e>\n\nno date\n",
    "tagger a <> 99999999999999 +0000\n\n\n\nblank lines\n\n",
    "tagger é <ü> 1 -1200\n\nünï\r\n",
    "tagger a <e> 1 +0000\n\n\xff",
)


def libgit2_row(repo: pygit2.Repository, oid: str) -> Row:
    """The row through libgit2 (reader.py's path), its tagger's zone as GTO reads it."""
    obj = repo.get(oid)
    return reader.libgit2_tag_row(obj) if isinstance(obj, pygit2.Tag) else None


def odd_tags(path: Path) -> list[str]:
    """The ODD_TAGS as tag objects of HEAD (git itself would refuse to write most)."""
    head = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    oids = []
    for text in ODD_TAGS:
        body = f"object {head}\ntype commit\ntag odd\n{text}".encode("utf-8", "surrogateescape")
        body = body.replace("\xff".encode(), b"\xff")  # not UTF-8
        written = subprocess.run(
            ["git", "-C", str(path), *HASH_OBJECT], input=body, capture_output=True, check=True
        )
        oids.append(written.stdout.decode().strip())
    return oids


@pytest.mark.parametrize("seed", range(3))
def test_streamed_tags_parse_as_libgit2_reads_them(tmp_path: Path, seed: int) -> None:
    path = write(random_history(seed), tmp_path / "registry").path
    odd = odd_tags(path)
    oids = list(dict.fromkeys([*refs(path).values(), *odd]))
    stream = TagStream.start(str(path / ".git"), str(path / ".git"), oids)
    assert stream is not None
    rows = stream.take(oids)
    repo = pygit2.Repository(str(path))
    for oid, row in rows.items():
        assert row == libgit2_row(repo, oid), oid
    assert len(rows) > len(oids) - len(odd)  # every ordinary tag, and some odd ones
    for oid, text in zip(odd, ODD_TAGS, strict=True):
        known, row = parse_tag_body(repo.odb.read(oid)[1])
        assert (oid in rows) == known, text
        assert not known or row == libgit2_row(repo, oid), text


def test_a_zone_libgit2_reads_as_utc_is_read_as_written_on_both_paths(tmp_path: Path) -> None:
    path = write(random_history(0), tmp_path / "registry").path
    odd = odd_tags(path)
    repo = pygit2.Repository(str(path))
    for oid, offset in ((odd[1], 99 * 3600 + 59 * 60), (odd[2], -(3600 + 60 * 60))):
        assert repo.get(oid).tagger.offset == 0  # libgit2 alone: UTC
        known, row = parse_tag_body(repo.odb.read(oid)[1])
        assert known
        assert row is not None
        assert row[4] == offset == libgit2_row(repo, oid)[4]  # type: ignore[index]


def test_odd_tags_the_parser_defers() -> None:
    deferred = {ODD_TAGS[i] for i in (4, 6, 7, 8, 9, 12)}
    for text in ODD_TAGS:
        body = f"object {'a' * 40}\ntype commit\ntag odd\n{text}".encode()
        body = body.replace("\xff".encode(), b"\xff")
        assert parse_tag_body(body)[0] == (text not in deferred), text


def test_records_cut_anywhere_parse_the_same(tmp_path: Path) -> None:
    """The pipe delivers any cut of the output: every chunk size gives the same rows."""
    path = write(random_history(1), tmp_path / "registry").path
    oids = list(dict.fromkeys([*refs(path).values(), *odd_tags(path)]))
    listing = "".join(f"{oid}\n" for oid in oids)
    git = ["git", "-C", str(path), "cat-file", "--batch"]
    output = subprocess.run(git, input=listing.encode(), capture_output=True, check=True).stdout
    expected = None
    for size in (1, 7, 100, 4096, len(output)):
        parser = RecordParser()
        for start in range(0, len(output), size):
            parser.feed(output[start : start + size])
        assert parser.whole
        assert sorted(parser.done) == sorted(oids)
        expected = expected or parser.rows
        assert parser.rows == expected, size


def test_missing_objects_and_a_failing_git_are_left_to_libgit2(tmp_path: Path) -> None:
    path = write(random_history(2), tmp_path / "registry").path
    present = list(refs(path).values())[:3]
    missing = "0123456789" * 4
    stream = TagStream.start(str(path / ".git"), str(path / ".git"), [missing, *present])
    assert stream is not None
    assert set(stream.take([missing, *present])) == set(present)
    not_a_repository = tmp_path / "not-a-repository"
    not_a_repository.mkdir()
    (not_a_repository / "config").write_text("")
    stream = TagStream.start(str(not_a_repository), str(not_a_repository), present)
    assert stream is not None
    assert stream.take(present) == {}
    stream = TagStream.start(str(path / ".git"), str(path / ".git"), present)
    assert stream is not None
    stream.close()  # a read that failed: stopped early, whatever it answered is whole
    assert set(stream.take(present)) <= set(present)


def test_partial_clones_and_other_object_directories_are_not_streamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(random_history(2), tmp_path / "registry").path
    git_dir = str(path / ".git")
    assert streamable(git_dir)
    monkeypatch.setenv("GIT_OBJECT_DIRECTORY", str(tmp_path))
    assert not streamable(git_dir)
    assert TagStream.start(git_dir, git_dir, ["a" * 40]) is None
    monkeypatch.delenv("GIT_OBJECT_DIRECTORY")
    with (path / ".git" / "config").open("a") as config:
        config.write('[remote "origin"]\n\tpromisor = true\n')
    assert not streamable(git_dir)


def git_reads_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tags and commits through git however few there are (commit_objects.py too)."""
    monkeypatch.setattr(reader, "STREAM_MIN", 1)
    monkeypatch.setattr(reader, "COMMITS_MIN", 1)


def cold_text(path: Path) -> str:
    shutil.rmtree(path / ".git" / "gitstage", ignore_errors=True)
    try:
        return show_json_text(ShowRequest(repo=str(path)))
    except READ_ERRORS as error:
        return f"{type(error).__name__}: {error}"


@pytest.mark.parametrize("seed", range(4))
def test_a_read_through_the_stream_equals_one_through_libgit2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    path = write(random_history(seed), tmp_path / "registry").path
    through_libgit2 = cold_text(path)
    streamed: list[dict[str, Row]] = []

    class Spy(TagStream):
        def take(self, oids: Collection[str]) -> dict[str, Row]:
            streamed.append(super().take(oids))
            return streamed[-1]

    git_reads_everything(monkeypatch)
    monkeypatch.setattr(tag_stream, "TagStream", Spy)
    assert cold_text(path) == through_libgit2
    assert sum(len(rows) for rows in streamed) > 10  # the rows came from git


def test_incremental_reads_through_the_stream_equal_full_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git_reads_everything(monkeypatch)
    path = write(random_history(4), tmp_path / "registry").path
    everything = refs(path)
    names = sorted(everything)
    checker = Checker(path)
    set_refs(path, dict.fromkeys(names[::2]))
    checker.check("half the tags")
    set_refs(path, {name: everything[name] for name in names[::2]})
    checker.check("all the tags")


def test_a_missing_tag_object_fails_as_through_libgit2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = registry(tmp_path / "registry")
    stage_tag_object_missing(repo)
    through_libgit2 = cold_text(repo)
    assert "tag churn#prod#2 points to object" in through_libgit2
    git_reads_everything(monkeypatch)
    assert cold_text(repo) == through_libgit2


@pytest.mark.parametrize(
    "parser",
    [
        ("-c", "import sys; sys.exit(3)"),  # dies at once
        ("-c", "import sys; sys.stdout.buffer.write(b'\\0\\0\\0\\5junk!')"),  # not marshal data
        ("-c", "import sys; sys.stdout.buffer.write(b'\\0\\0\\1')"),  # a frame cut short
    ],
)
def test_a_failing_parser_leaves_every_tag_to_libgit2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parser: tuple[str, ...]
) -> None:
    path = write(random_history(5), tmp_path / "registry").path
    through_libgit2 = cold_text(path)
    oids = list(refs(path).values())
    monkeypatch.setattr(tag_stream, "_PARSER", parser)
    stream = TagStream.start(str(path / ".git"), str(path / ".git"), oids)
    assert stream is not None
    assert stream.take(oids) == {}
    git_reads_everything(monkeypatch)
    assert cold_text(path) == through_libgit2
