"""Random registry operations for the round-trip test, as argv for gto and for gitstage.

Arguments are drawn around what the registry holds (its versions, commits and stages) so that
both successes and every kind of refusal come up; gitstage gets GTO's spelling or its own.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

ARTIFACTS = ("m", "cv/a:nn")
STAGES = ("dev", "staging", "prod")
ODD_STAGE = "qa"
FRESH_VERSIONS = ("v1.0.0", "v1.1.0-rc.1", "v2.0.0", "v0.3.0+build.7", "v0.0.2")
SIMPLE = ("auto", "auto", "auto", "true", "false")


@dataclass
class World:
    """What the registry holds now: commits (oldest first) and each artifact's version names."""

    commits: list[str]
    versions: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolOp:
    """The same operation for both tools; argv without `-r` (and `--date` for gitstage)."""

    label: str
    gto: tuple[str, ...]
    gitstage: tuple[str, ...]


@dataclass(frozen=True)
class NewCommit:
    label: str = "commit"


@dataclass(frozen=True)
class ToggleStages:
    """Write or remove `.gto` with `stages: [dev, staging, prod]`."""

    label: str = "toggle .gto stages"


Op = ToolOp | NewCommit | ToggleStages


def choose(rng: random.Random, world: World) -> Op:
    roll = rng.random()
    if roll < 0.07:
        return NewCommit()
    if roll < 0.10:
        return ToggleStages()
    name = rng.choice(ARTIFACTS)
    kinds = (_register, _assign, _unassign, _deregister, _deprecate)
    weights = (24, 34, 18, 14, 7)
    return rng.choices(kinds, weights)[0](rng, world, name)


def _ref(rng: random.Random, world: World) -> str:
    return "HEAD" if rng.random() < 0.5 else rng.choice(world.commits)


def _version(rng: random.Random, world: World, name: str) -> str:
    known = world.versions.get(name, [])
    if known and rng.random() < 0.75:
        return rng.choice(known)
    return rng.choice(FRESH_VERSIONS)


def _stage(rng: random.Random) -> str:
    return ODD_STAGE if rng.random() < 0.05 else rng.choice(STAGES)


def _common(rng: random.Random, *, force: float) -> list[str]:
    args = ["--simple", rng.choice(SIMPLE)]
    if rng.random() < force:
        args.append("--force")
    return args


def _same(label: str, args: list[str]) -> ToolOp:
    return ToolOp(label, tuple(args), tuple(args))


def _register(rng: random.Random, world: World, name: str) -> ToolOp:
    args = ["register", name]
    if rng.random() < 0.5:
        args.append(_ref(rng, world))
    roll = rng.random()
    if roll < 0.3:
        args += ["--version", _version(rng, world, name)]
    elif roll < 0.55:
        args.append(rng.choice(("--bump-major", "--bump-minor", "--bump-patch")))
    return _same("register", args + _common(rng, force=0.15))


def _assign(rng: random.Random, world: World, name: str) -> ToolOp:
    args = ["assign", name]
    roll = rng.random()
    if roll < 0.55:
        args.append(_ref(rng, world))
        if rng.random() < 0.2:
            args += ["--version", rng.choice(FRESH_VERSIONS)]
        if rng.random() < 0.15:
            args.append("--sr")
    elif roll < 0.85:
        args += ["--version", _version(rng, world, name)]
    args += ["--stage", _stage(rng)]
    return _same("assign", args + _common(rng, force=0.2))


def _flags(rng: random.Random) -> list[str]:
    args = _common(rng, force=0.15)
    if rng.random() < 0.12:
        args.append("--delete")
    return args


def _unassign(rng: random.Random, world: World, name: str) -> ToolOp:
    version, stage, flags = _version(rng, world, name), _stage(rng), _flags(rng)
    gto = ("deprecate", name, version, stage, *flags)
    if rng.random() < 0.5:
        return ToolOp("unassign", gto, gto)
    return ToolOp("unassign", gto, ("unassign", name, "--version", version, stage, *flags))


def _deregister(rng: random.Random, world: World, name: str) -> ToolOp:
    version, flags = _version(rng, world, name), _flags(rng)
    gto = ("deprecate", name, version, *flags)
    if rng.random() < 0.5:
        return ToolOp("deregister", gto, gto)
    return ToolOp("deregister", gto, ("deregister", name, "--version", version, *flags))


def _deprecate(rng: random.Random, world: World, name: str) -> ToolOp:
    args = ["deprecate", name, "--simple", rng.choice(SIMPLE)]
    if rng.random() < 0.35:
        args.append("--force")
    if rng.random() < 0.08:
        args.append("--delete")
    return _same("deprecate", args)
