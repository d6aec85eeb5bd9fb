"""Seeded random GTO histories, written as real git repositories with one `git fast-import`.

A history is a linear branch of commits (each with a committer date and an optional
artifacts.yaml) and a list of tags: annotated GTO tags with tagger dates in several time zones
(same-second ties on purpose), lightweight look-alikes, non-GTO tags and a tag of a tag. The
generator does not simulate GTO: gto 1.10.1 is the oracle. It only keeps normal histories clear
of the two shapes that crash gto (two versions of one artifact on one commit that has a stage
tag; an `@created` tag); `crash=` adds exactly one of them on purpose.

Regenerate a history by hand (the differential test prints this command on failure):

    PYTHONPATH=operator:. python -m tests.conformance.history SEED DEST [--crash KIND]
"""

from __future__ import annotations

import argparse
import enum
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from random import Random

import yaml

from tests.support.fast_import import (
    CommitSpec,
    FastImport,
    Person,
    Stamp,
    TagSpec,
    checkout,
    init_repo,
)

BASE_EPOCH = 1_700_000_000

ARTIFACT_POOL = ("m", "rf", "nn/cls", "cv:seg", "a.b/c_d:Model_X", "M", "x9", "path/to:model")
YAML_ONLY = ("feat", "emb")
STAGE_POOL = ("dev", "staging", "prod", "qa", "Prod_1/x", "p")
VERSION_POOL = (
    "v0.0.1",
    "v0.0.2",
    "v0.1.0",
    "v1.0.0-rc.1",
    "v1.0.0-alpha.beta",
    "v1.0.0",
    "v1.0.0+build.5",
    "v1.0.1",
    "v1.1.0-alpha+meta",
    "v1.2.0",
    "v1.10.0",
    "v2.0.0-beta.2",
    "v2.0.0",
    "v10.0.0",
)
# "-0000" is git's "zone unknown": the same instant as +0000.
TIMEZONES = ("+0000", "+0300", "-0700", "+0530", "-1100", "+1345", "+0100", "-0230", "-0000")
PEOPLE = (
    Person("Registry Bot", "bot@example.com"),
    Person("José Núñez", "jose@example.org"),
    Person("ci", "ci@ci.local"),
)
# git accepts `name <>`; gto 1.10.1 fails on a GTO tag whose tagger has no email.
NO_EMAIL = Person("no email", "")
MESSAGES = (
    "Registering artifact",
    "promote to stage",
    "rollback\n\nbecause of a bad canary",
    "x",
    "",
    "  padded, GTO strips it \n\n",
    "ünïcödé ✓",
)
# Seconds between two consecutive tags: many ties (0), a few long gaps.
STEPS = (0, 0, 0, 1, 1, 2, 3, 5, 30, 60, 600, 3600, 86400)
NOISE_FORMS = (
    "v1.0.0",
    "release-3",
    "{p}@V1.0.0",
    "{p}#prod##1",
    "{p}@v1.0.0#1#2",
    "{p}@latest",
    "{p}@deprecated!",
    "a=b=c@v1.0.0",
    "{p}@v1",
)


class Crash(enum.StrEnum):
    """History shapes on which gto 1.10.1 fails every command."""

    TWO_VERSIONS = "two-versions"  # S35
    CREATED = "created"  # S26
    CREATED_LIGHTWEIGHT = "created-lightweight"  # S26, as a lightweight `@created#N`
    TWO_VERSIONS_AT_HEAD = "two-versions-at-head"  # listed in artifacts.yaml at HEAD
    TAGGER_WITHOUT_EMAIL = "tagger-without-email"  # "Could not parse tagger identity"


@dataclass(frozen=True)
class CommitPlan:
    """A commit; its author and author date differ from the committer's on purpose (GTO dates
    version commits with the committer date)."""

    when: Stamp
    artifacts_yaml: str | None = None
    person: Person = PEOPLE[0]
    author: Person = PEOPLE[1]
    author_when: Stamp | None = None


@dataclass(frozen=True)
class TagPlan:
    """A tag on commit number `target` (int) or on the annotated tag named `target` (str)."""

    name: str
    target: int | str
    when: Stamp | None
    person: Person = PEOPLE[0]
    message: str = "tag"


@dataclass
class History:
    seed: int
    commits: list[CommitPlan]
    tags: list[TagPlan]
    gto_config: str | None = None
    pack_refs: bool = False
    artifacts: list[str] = field(default_factory=list)
    stages: dict[str, list[str]] = field(default_factory=dict)
    versions: dict[str, list[str]] = field(default_factory=dict)
    crash: Crash | None = None
    offending: tuple[str, ...] = ()

    def regenerate_command(self, dest: Path) -> str:
        crash = f" --crash {self.crash.value}" if self.crash else ""
        return (
            f"PYTHONPATH=operator:. python -m tests.conformance.history {self.seed} {dest}{crash}"
        )


@dataclass(frozen=True)
class WrittenRepo:
    path: Path
    commits: list[str]
    tags: dict[str, str]


def tag_prefix(artifact: str) -> str:
    return artifact.replace(":", "=")


def write(history: History, path: Path) -> WrittenRepo:
    """Write `history` into a new repository at `path` (one fast-import), then check it out."""
    init_repo(path)
    commit_marks = list(range(1, len(history.commits) + 1))
    tag_marks = _tag_marks(history.tags, first=len(history.commits) + 1)
    with FastImport(path) as stream:
        for mark, plan in zip(commit_marks, history.commits, strict=True):
            stream.commit(
                CommitSpec(
                    mark=mark,
                    when=plan.when,
                    message=f"commit {mark}",
                    files={"artifacts.yaml": plan.artifacts_yaml, "data.txt": f"{mark}\n"},
                    person=plan.person,
                    author=plan.author,
                    author_when=plan.author_when or Stamp(plan.when.epoch - 7200, "+0200"),
                )
            )
        for tag in history.tags:
            target = (
                tag_marks[tag.target] if isinstance(tag.target, str) else commit_marks[tag.target]
            )
            stream.tag(
                TagSpec(
                    name=tag.name,
                    target=target,
                    when=tag.when,
                    message=tag.message,
                    person=tag.person,
                    mark=tag_marks.get(tag.name),
                )
            )
        marks = stream.close()
    checkout(path)
    if history.pack_refs:
        subprocess.run(["git", "-C", str(path), "pack-refs", "--all"], check=True)
    if history.gto_config is not None:
        (path / ".gto").write_text(history.gto_config)
    return WrittenRepo(
        path=path,
        commits=[marks[m] for m in commit_marks],
        tags={name: marks[mark] for name, mark in tag_marks.items()},
    )


def _tag_marks(tags: list[TagPlan], first: int) -> dict[str, int]:
    """Marks for the annotated tags that other tags point at."""
    inner = sorted({t.target for t in tags if isinstance(t.target, str)})
    return {name: first + number for number, name in enumerate(inner)}


@dataclass
class _Artifact:
    name: str
    pending: list[tuple[str, int]]
    registered: dict[str, int] = field(default_factory=dict)
    deregistered: set[str] = field(default_factory=set)
    assigned: list[tuple[int | str, str]] = field(default_factory=list)
    free_commits: list[int] = field(default_factory=list)
    registration_tags: list[str] = field(default_factory=list)
    counter: int = 0
    # Commits holding a second registered version of the same version name (duplicates), and
    # commits holding two versions, which no stage tag may touch (gto would crash).
    duplicates: list[int] = field(default_factory=list)
    twins: set[int] = field(default_factory=set)
    stage_targets: set[int | str] = field(default_factory=set)

    @property
    def prefix(self) -> str:
        return tag_prefix(self.name)


class _Generator:
    def __init__(self, seed: int) -> None:
        self.rng = Random(seed)
        self.seed = seed
        self.clock = BASE_EPOCH
        self.names: set[str] = set()
        self.tags: list[TagPlan] = []
        self.stages_of: dict[str, set[str]] = {}

    # -- time and naming -------------------------------------------------------------------

    def stamp(self, step: int | None = None) -> Stamp:
        if step is None:
            step = self.rng.choice(STEPS)
            if self.rng.random() < 0.05:  # tagged later, dated earlier: counters lie
                step = -self.rng.randint(1, 120)
        self.clock += step
        return Stamp(self.clock, self.rng.choice(TIMEZONES))

    def counted(self, art: _Artifact, base: str) -> str:
        art.counter += self.rng.choice((1, 1, 1, 2, 7))
        return f"{base}#{art.counter}"

    def pick_name(self, art: _Artifact, base: str, simple_chance: float) -> str:
        if base not in self.names and self.rng.random() < simple_chance:
            return base
        return self.counted(art, base)

    def emit(
        self, name: str, target: int | str, when: Stamp | None, person: Person | None = None
    ) -> None:
        assert name not in self.names, name
        self.names.add(name)
        person = person or self.rng.choice(PEOPLE)
        self.tags.append(TagPlan(name, target, when, person, self.rng.choice(MESSAGES)))

    # -- actions ---------------------------------------------------------------------------

    def actions(self, art: _Artifact) -> Iterator[tuple[str, float]]:
        if art.pending:
            yield "register", 3.0
        if art.registered or art.pending or art.free_commits:
            yield "assign", 5.0
        if art.assigned:
            yield "unassign", 2.0
        if set(art.registered) - art.deregistered:
            yield "deregister", 1.0
        if art.deregistered:
            yield "reregister", 1.0
        if art.registered and art.free_commits:
            yield "duplicate", 0.25
        if art.pending and set(art.registered.values()) - art.stage_targets - art.twins:
            yield "twin", 0.25
        yield "deprecate", 0.6
        yield "noise", 0.6

    def act(self, art: _Artifact, action: str, when: Stamp) -> None:
        getattr(self, f"_{action}")(art, when)

    def _register(self, art: _Artifact, when: Stamp) -> None:
        version, commit = art.pending.pop(0)
        name = self.pick_name(art, f"{art.prefix}@{version}", simple_chance=0.8)
        art.registered[version] = commit
        art.registration_tags.append(name)
        self.emit(name, commit, when)

    def _deregister(self, art: _Artifact, when: Stamp) -> None:
        version = self.rng.choice(sorted(set(art.registered) - art.deregistered))
        art.deregistered.add(version)
        name = self.pick_name(art, f"{art.prefix}@{version}!", simple_chance=0.7)
        self.emit(name, art.registered[version], when)

    def _reregister(self, art: _Artifact, when: Stamp) -> None:
        version = self.rng.choice(sorted(art.deregistered))
        art.deregistered.discard(version)
        name = self.pick_name(art, f"{art.prefix}@{version}", simple_chance=0.5)
        self.emit(name, art.registered[version], when)

    def _duplicate(self, art: _Artifact, when: Stamp) -> None:
        """The same version name registered again on another commit (a manual mistake)."""
        version = self.rng.choice(sorted(art.registered))
        commit = art.free_commits.pop(self.rng.randrange(len(art.free_commits)))
        art.duplicates.append(commit)
        self.emit(self.counted(art, f"{art.prefix}@{version}"), commit, when)

    def _twin(self, art: _Artifact, when: Stamp) -> None:
        """A second version on a commit that already holds one; no stage tag will follow."""
        version, _ = art.pending.pop()
        candidates = set(art.registered.values()) - art.stage_targets - art.twins
        commit = self.rng.choice(sorted(candidates))
        art.twins.add(commit)
        name = self.pick_name(art, f"{art.prefix}@{version}", simple_chance=0.8)
        art.registration_tags.append(name)
        self.emit(name, commit, when)

    def _assign_target(self, art: _Artifact) -> int | str:
        for _ in range(20):
            target = self._any_assign_target(art)
            if target not in art.twins:
                break
        else:
            target = self.rng.choice(art.registration_tags)  # a tag of a tag is always safe
        art.stage_targets.add(target)
        return target

    def _any_assign_target(self, art: _Artifact) -> int | str:
        roll = self.rng.random()
        if roll < 0.06 and art.registration_tags:
            return self.rng.choice(art.registration_tags)  # tag of a tag (S36)
        if roll < 0.18 and art.free_commits:
            return self.rng.choice(art.free_commits)  # unregistered commit: SHA version
        if roll < 0.30 and art.pending:
            return self.rng.choice(art.pending)[1]  # registered only later
        if art.registered or art.duplicates:
            return self.rng.choice(sorted(art.registered.values()) + art.duplicates)
        return self.rng.choice([c for _, c in art.pending] + art.free_commits)

    def _assign(self, art: _Artifact, when: Stamp) -> None:
        target = self._assign_target(art)
        stage = self.rng.choice(self.stage_pool)
        name = self.pick_name(art, f"{art.prefix}#{stage}", simple_chance=0.15)
        art.assigned.append((target, stage))
        self.stages_of.setdefault(art.name, set()).add(stage)
        self.emit(name, target, when)

    def _unassign(self, art: _Artifact, when: Stamp) -> None:
        target, stage = self.rng.choice(art.assigned)
        art.stage_targets.add(target)
        name = self.pick_name(art, f"{art.prefix}#{stage}!", simple_chance=0.15)
        self.emit(name, target, when)

    def _deprecate(self, art: _Artifact, when: Stamp) -> None:
        commits = sorted(art.registered.values()) or art.free_commits or [0]
        name = self.pick_name(art, f"{art.prefix}@deprecated", simple_chance=1.0)
        self.emit(name, self.rng.choice(commits), when)

    def _noise(self, art: _Artifact, when: Stamp) -> None:
        commit = self.rng.randrange(self.n_commits)
        if self.rng.random() < 0.5:  # lightweight GTO look-alikes are ignored
            stage = self.rng.choice(self.stage_pool)
            form = self.rng.choice((f"#{stage}#", "@v9.9.", "@deprecated#"))
            name = f"{art.prefix}{form}{900 + len(self.names)}"
            self.emit(name, commit, None)
            return
        name = self.rng.choice(NOISE_FORMS).format(p=art.prefix)
        if name not in self.names:
            self.emit(name, commit, when)

    # -- the whole history -----------------------------------------------------------------

    def build(self) -> History:
        rng = self.rng
        self.n_commits = rng.randint(5, 12)
        self.stage_pool = rng.sample(STAGE_POOL, rng.randint(2, 4))
        arts = [self.plan_artifact(name) for name in rng.sample(ARTIFACT_POOL, rng.randint(3, 5))]
        previous: _Artifact | None = None
        for _ in range(rng.randint(25, 60)):
            tie = previous is not None and rng.random() < 0.3
            art = previous if tie and previous else rng.choice(arts)
            when = self.stamp(0 if tie else None)
            choices = list(self.actions(art))
            action = rng.choices([a for a, _ in choices], [w for _, w in choices])[0]
            self.act(art, action, when)
            previous = art
        head = self.n_commits - 1
        commits = self.plan_commits([a.name for a in arts if head not in a.twins])
        return History(
            seed=self.seed,
            commits=commits,
            tags=self.tags,
            gto_config=self.plan_config(),
            pack_refs=self.seed % 3 == 1,  # by seed: any 3 consecutive seeds cover both
            artifacts=sorted({a.name for a in arts} | set(YAML_ONLY)),
            stages={a: sorted(s) for a, s in self.stages_of.items()},
            versions={a.name: sorted(a.registered) for a in arts if a.registered},
        )

    def plan_artifact(self, name: str) -> _Artifact:
        count = self.rng.randint(1, min(5, self.n_commits - 1))
        commits = self.rng.sample(range(self.n_commits), count)
        versions = self.rng.sample(VERSION_POOL, count)
        free = [c for c in range(self.n_commits) if c not in commits]
        return _Artifact(name, pending=list(zip(versions, commits, strict=True)), free_commits=free)

    def plan_commits(self, artifacts: list[str]) -> list[CommitPlan]:
        """Committer dates spread around the tag dates: some commits are newer than a
        deprecation (S24); sometimes one ties with a deprecation to the second."""
        rng = self.rng
        stamps = [t.when.epoch for t in self.tags if t.when] or [BASE_EPOCH]
        low, high = min(stamps), max(stamps)
        span = max(high - low, 10)
        dates = sorted(rng.randint(low - span, high + span // 3) for _ in range(self.n_commits))
        deprecations = [t for t in self.tags if "@deprecated" in t.name and t.when]
        if deprecations and rng.random() < 0.4:
            tie = rng.choice(deprecations)
            if isinstance(tie.target, int) and tie.when is not None:
                dates[tie.target] = tie.when.epoch
        keys = [a for a in artifacts if ":" not in a]
        yaml_text: str | None = None
        plans = []
        for number, epoch in enumerate(dates):
            last = number == self.n_commits - 1
            if last or rng.random() < 0.4:
                yaml_text = self.artifacts_yaml(keys, last)
            when = Stamp(epoch, rng.choice(TIMEZONES))
            plans.append(CommitPlan(when, yaml_text, rng.choice(PEOPLE), rng.choice(PEOPLE)))
        return plans

    def artifacts_yaml(self, registered: list[str], at_head: bool) -> str | None:
        """artifacts.yaml content; at HEAD it lists some registered and some unregistered names."""
        rng = self.rng
        pool = registered + list(YAML_ONLY)
        if not at_head and rng.random() < 0.3:
            return None
        names = set(rng.sample(pool, rng.randint(1, len(pool))))
        if at_head:
            names |= {rng.choice(YAML_ONLY)} | ({rng.choice(registered)} if registered else set())
        document: dict[str, dict[str, object]] = {}
        for name in sorted(names):
            entry: dict[str, object] = {"type": rng.choice(("model", "dataset"))}
            entry["path"] = f"models/{name.replace('/', '_')}.pkl"
            if rng.random() < 0.5:
                entry["labels"] = rng.sample(["a", "b", "cv"], 2)
                entry["description"] = f"about {name}"
            if rng.random() < 0.3:
                entry["virtual"] = False
                entry["custom"] = {"k": rng.randint(1, 9), "nested": [1, "two"]}
            document[name] = entry
        return yaml.safe_dump(document, sort_keys=True)

    def plan_config(self) -> str | None:
        if self.seed % 5 != 2:  # by seed: any 5 consecutive seeds have one `.gto`
            return None
        stages = self.rng.sample(self.stage_pool, self.rng.randint(1, len(self.stage_pool)))
        return yaml.safe_dump({"stages": stages})


class Script:
    """A hand-written history: commits and tags at given seconds after BASE_EPOCH."""

    def __init__(self, gto_config: str | None = None) -> None:
        self.history = History(seed=-1, commits=[], tags=[], gto_config=gto_config)

    def commit(self, at: int = 0, tz: str = "+0000", artifacts_yaml: str | None = None) -> int:
        """Append a commit (committer date `at`); return its number."""
        self.history.commits.append(CommitPlan(Stamp(BASE_EPOCH + at, tz), artifacts_yaml))
        return len(self.history.commits) - 1

    def tag(self, name: str, target: int | str, at: int | None, tz: str = "+0000") -> None:
        """An annotated tag dated `at` on a commit number or a tag name; `at` None: lightweight."""
        when = None if at is None else Stamp(BASE_EPOCH + at, tz)
        self.history.tags.append(TagPlan(name, target, when, message=f"tag {name}"))

    def write(self, path: Path) -> WrittenRepo:
        return write(self.history, path)


def git_tag_annotated(repo: Path, name: str, target: str, when: Stamp, person: Person) -> None:
    """`git tag -a` with the tagger date set through GIT_COMMITTER_DATE, as CI scripts do."""
    env = {
        "GIT_COMMITTER_DATE": f"@{when.raw()}",
        "GIT_COMMITTER_NAME": person.name,
        "GIT_COMMITTER_EMAIL": person.email,
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(repo),
    }
    subprocess.run(
        ["git", "-C", str(repo), "tag", "-a", "-m", f"tag {name}", name, target],
        check=True,
        env=env,
    )


def random_history(seed: int, crash: Crash | None = None) -> History:
    """The history of `seed`; with `crash`, the same history plus one gto-crashing shape."""
    generator = _Generator(seed)
    history = generator.build()
    if crash is not None:
        _add_crash(generator, history, crash)
    return history


def _add_crash(generator: _Generator, history: History, crash: Crash) -> None:
    registrations = [
        t
        for t in history.tags
        if t.when and "@v" in t.name and "!" not in t.name and isinstance(t.target, int)
    ]
    owner = registrations[0] if registrations else None
    prefix = owner.name.split("@")[0] if owner else "m"
    commit = owner.target if owner and isinstance(owner.target, int) else 0
    if crash is Crash.CREATED:
        history.offending = (f"{prefix}@created",)
        generator.emit(history.offending[0], commit, generator.stamp(5))
    elif crash is Crash.CREATED_LIGHTWEIGHT:
        history.offending = (f"{prefix}@created#{generator.rng.randint(1, 99)}",)
        generator.emit(history.offending[0], commit, None)
    elif crash is Crash.TAGGER_WITHOUT_EMAIL:
        history.offending = (f"{prefix}@deprecated#9999",)
        generator.emit(history.offending[0], commit, generator.stamp(5), NO_EMAIL)
    elif crash is Crash.TWO_VERSIONS:
        first = owner.name if owner else f"{prefix}@v76.0.0"
        if owner is None:
            generator.emit(first, commit, generator.stamp(5))
        generator.emit(f"{prefix}@v77.0.0", commit, generator.stamp(5))
        generator.emit(f"{prefix}#crash#1", commit, generator.stamp(1))
        history.offending = (first, f"{prefix}@v77.0.0")
    else:
        _two_versions_at_head(generator, history)
    history.tags = generator.tags
    history.crash = crash


def _two_versions_at_head(generator: _Generator, history: History) -> None:
    """Two versions of an artifact on HEAD, whose artifacts.yaml lists it (discovery crashes)."""
    name = "m"
    head = len(history.commits) - 1
    listed = yaml.safe_load(history.commits[head].artifacts_yaml or "{}") or {}
    listed[name] = {"type": "model", "path": "models/m.pkl"}
    history.commits[head] = replace(
        history.commits[head], artifacts_yaml=yaml.safe_dump(listed, sort_keys=True)
    )
    history.offending = ("m@v77.0.0", "m@v78.0.0")
    for tag in history.offending:
        generator.emit(tag, head, generator.stamp(3))


def main() -> None:
    parser = argparse.ArgumentParser(description="Write the random GTO history of a seed.")
    parser.add_argument("seed", type=int)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--crash", choices=[c.value for c in Crash])
    args = parser.parse_args()
    history = random_history(args.seed, Crash(args.crash) if args.crash else None)
    written = write(history, args.dest)
    print(f"{written.path}: {len(history.commits)} commits, {len(history.tags)} tags")
    for tag in history.tags:
        kind = f"{tag.when.raw()}" if tag.when else "lightweight"
        print(f"  {tag.name:40} -> {tag.target!s:12} {kind}")


if __name__ == "__main__":
    main()
