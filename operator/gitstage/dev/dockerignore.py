"""The files a `.dockerignore` lets into a build context, selected as docker and buildah do.

Patterns are matched against slash-separated paths relative to the context: `*`, `?` and
`[...]` stay within one path segment, `**` spans any number of segments, and a pattern that
matches a directory covers everything under it. The last matching pattern wins; `!` re-includes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

_WILDCARD = re.compile(r"(\*|\?|\[[^\]]*\])")


@dataclass(frozen=True)
class Rule:
    regex: re.Pattern[str]
    include: bool
    literal: str  # the pattern up to its first wildcard: all a re-inclusion can start with


def parse(text: str) -> list[Rule]:
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        pattern = os.path.normpath(line.removeprefix("!").strip()).strip("/")
        literal = _WILDCARD.split(pattern, maxsplit=1)[0]
        rules.append(Rule(_regex(pattern), include, literal))
    return rules


def _regex(pattern: str) -> re.Pattern[str]:
    segments = pattern.split("/")
    parts = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            parts.append(".*" if last else "(?:.*/)?")
        else:
            parts.append(_segment(segment) + ("" if last else "/"))
    return re.compile("".join(parts) + "(?:/.*)?", re.DOTALL)


def _segment(segment: str) -> str:
    out = []
    for part in _WILDCARD.split(segment):
        if part == "*":
            out.append("[^/]*")
        elif part == "?":
            out.append("[^/]")
        elif part.startswith("[") and part.endswith("]") and len(part) > 2:
            out.append("[" + part[1:-1].replace("\\", "\\\\") + "]")
        else:
            out.append(re.escape(part))
    return "".join(out)


def excluded(path: str, rules: list[Rule]) -> bool:
    verdict = False
    for rule in rules:
        if rule.regex.fullmatch(path):
            verdict = not rule.include
    return verdict


def _may_reinclude(directory: str, rules: list[Rule]) -> bool:
    """Whether a `!` rule could select something under an excluded directory."""
    inside = directory + "/"
    return any(
        rule.include and (rule.literal.startswith(inside) or inside.startswith(rule.literal))
        for rule in rules
    )


def context_files(root: Path, ignore_file: str = ".dockerignore") -> list[str]:
    """Relative paths of the files and symlinks sent as the build context, sorted."""
    ignore = root / ignore_file
    rules = parse(ignore.read_text()) if ignore.is_file() else []
    found: list[str] = []
    for current, dirs, files in os.walk(root):
        base = os.path.relpath(current, root)
        prefix = "" if base == "." else base + "/"
        kept = [
            d for d in dirs if not excluded(prefix + d, rules) or _may_reinclude(prefix + d, rules)
        ]
        # A symlink to a directory is sent as a link, not followed.
        links = [d for d in kept if (Path(current) / d).is_symlink()]
        found += (prefix + d for d in links if not excluded(prefix + d, rules))
        dirs[:] = [d for d in kept if d not in links]
        found += (prefix + f for f in files if not excluded(prefix + f, rules))
    return sorted(found)
