"""Tag grammar, names and versions, against the tables in gto-semantics.md §1."""

from __future__ import annotations

import itertools

import pytest
import semver

from gitstage.domain.registry.names import (
    is_valid_fullname,
    is_valid_name,
    name_to_tag,
    tag_to_name,
)
from gitstage.domain.registry.semver import InvalidVersionError, parse_version, precedence_of
from gitstage.domain.registry.tags import Action, format_tag, parse_shortcut, parse_tag


@pytest.mark.parametrize(
    ("tag", "artifact", "action", "version", "stage", "counter"),
    [
        ("m@v1.0.0-rc.1+b.2#9", "m", Action.REGISTER, "v1.0.0-rc.1+b.2", None, 9),
        ("a/b=c/d@v1.0.0", "a/b:c/d", Action.REGISTER, "v1.0.0", None, None),
        ("./x=m@v1.0.0", "./x:m", Action.REGISTER, "v1.0.0", None, None),
        ("m#Prod_1/x#1", "m", Action.ASSIGN, None, "Prod_1/x", 1),
        ("m#p", "m", Action.ASSIGN, None, "p", None),
        ("m#prod!#007", "m", Action.UNASSIGN, None, "prod", 7),
        ("m@v2.0.0!", "m", Action.DEREGISTER, "v2.0.0", None, None),
        ("m@deprecated", "m", Action.DEPRECATE, None, None, None),
        ("m@deprecated#3", "m", Action.DEPRECATE, None, None, 3),
        ("m@created", "m", Action.CREATE, None, None, None),
        ("rf#prod-5", "rf", Action.ASSIGN, None, "prod-5", None),
    ],
)
def test_parses_gto_tags(
    tag: str,
    artifact: str,
    action: Action,
    version: str | None,
    stage: str | None,
    counter: int | None,
) -> None:
    parsed = parse_tag(tag)
    assert parsed is not None
    assert (parsed.artifact, parsed.action, parsed.version, parsed.stage, parsed.counter) == (
        artifact,
        action,
        version,
        stage,
        counter,
    )


@pytest.mark.parametrize(
    "tag",
    [
        "m@deprecated!",
        "m#prod##1",
        "m@v1.0.0#1#2",
        "a=b=c@v1.0.0",
        "m@latest",
        "v1.0.0",
        "m@V1.0.0",
        "m@v1",
        "m@v01.0.0",
        "release-3",
        "m-@v1.0.0",
        "_m#prod",
        "m#prod-",
    ],
)
def test_ignores_what_gto_ignores(tag: str) -> None:
    assert parse_tag(tag) is None


@pytest.mark.parametrize(
    ("action", "kwargs", "expected"),
    [
        (Action.REGISTER, {"version": "v1.0.0"}, "path/to=model@v1.0.0"),
        (Action.DEREGISTER, {"version": "v1.0.0", "counter": 3}, "path/to=model@v1.0.0!#3"),
        (Action.ASSIGN, {"stage": "prod", "counter": 7}, "path/to=model#prod#7"),
        (Action.UNASSIGN, {"stage": "prod", "counter": 8}, "path/to=model#prod!#8"),
        (Action.DEPRECATE, {}, "path/to=model@deprecated"),
    ],
)
def test_formats_round_trip(action: Action, kwargs: dict[str, object], expected: str) -> None:
    tag = format_tag(action, "path/to:model", **kwargs)  # type: ignore[arg-type]
    assert tag == expected
    parsed = parse_tag(tag)
    assert parsed is not None
    assert (parsed.artifact, parsed.action) == ("path/to:model", action)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("path/to:model", True),
        ("a.b/c_d:Model_X", True),
        ("x", True),
        ("M", True),
        ("nested/name", True),
        ("m-", False),
        ("m.v1", False),
        ("_m", False),
        ("a:b:c", False),
        ("dir:", False),
        ("Ü", False),
    ],
)
def test_artifact_names_s40(name: str, valid: bool) -> None:
    assert is_valid_fullname(name) is valid


def test_name_character_classes_match_gto() -> None:
    # `9-_` is not a range in GTO's classes: enumerate every ASCII character as the spec did.
    inside = {c for c in map(chr, range(128)) if is_valid_name(f"a{c}a")}
    assert (
        "".join(sorted(inside))
        == "-/0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
    )
    assert name_to_tag("a/b:c") == "a/b=c"
    assert tag_to_name("a/b=c") == "a/b:c"


def test_shortcuts() -> None:
    assert parse_shortcut("dir:m#prod").stage == "prod"
    assert parse_shortcut("dir:m#prod").name == "dir:m"
    assert parse_shortcut("m@greatest").latest
    assert parse_shortcut("m@v1.2.3").version == "v1.2.3"
    assert not parse_shortcut("m").is_shortcut


VERSIONS = [
    "v1.0.0",
    "v1.0.0-rc.1",
    "v1.0.0-rc.2",
    "v1.0.0-rc.10",
    "v1.0.0-alpha",
    "v1.0.0-alpha.1",
    "v1.0.0-alpha.beta",
    "v1.0.0-beta.11",
    "v1.0.0+build.5",
    "v1.0.0-0.3",
    "v1.0.0-A",
    "v2.0.0",
    "v1.10.0",
    "v1.2.0",
]


@pytest.mark.parametrize(("a", "b"), list(itertools.product(VERSIONS, VERSIONS)))
def test_precedence_matches_python_semver(a: str, b: str) -> None:
    expected = semver.Version.parse(a[1:]).compare(semver.Version.parse(b[1:]))
    pa, pb = precedence_of(a), precedence_of(b)
    assert (pa > pb) - (pa < pb) == expected


@pytest.mark.parametrize("text", ["1.2.3", "V2.0.0", "v1", "v1.2", "v01.0.0"])
def test_rejects_invalid_versions(text: str) -> None:
    with pytest.raises(InvalidVersionError, match="cannot be parsed"):
        parse_version(text)


def test_bumps_drop_prerelease() -> None:
    assert parse_version("v1.0.0-rc.1").bump("patch").text == "v1.0.1"
    assert parse_version("v1.2.3").bump("minor").text == "v1.3.0"
    assert parse_version("v1.2.3").bump("major").text == "v2.0.0"


def test_the_lean_tag_pattern_matches_as_gtos_does() -> None:
    """parse_tag matches with TAG_RE's groups made non-capturing: the same names, the same
    values, for GTO's own tag forms and near misses."""
    from random import Random

    from gitstage.domain.registry import tags

    lean = tags._match_tag
    rng = Random(7)
    parts = ["m", "a/b=c", "./x=m", "@", "#", "!", "v1.0.0", "v1.0.0-rc.1+b.2", "prod", "#3"]
    parts += ["deprecated", "created", "=", "v01.0.0", "-", "_", "/", "9", "P_1/x", ""]
    names = ["".join(rng.choice(parts) for _ in range(rng.randint(1, 6))) for _ in range(20_000)]
    names += [f"{a}{b}{c}{d}" for a in parts[:3] for b in parts[3:5] for c in parts for d in parts]
    for name in names:
        full = tags.TAG_RE.match(name)
        mine = lean(name)
        assert (full is None) == (mine is None), name
        if full is not None and mine is not None:
            assert full.group(*tags._TAG_GROUPS) == mine.group(*tags._TAG_GROUPS), name
    assert sum(tags.TAG_RE.match(n) is not None for n in names) > 500  # not only misses
