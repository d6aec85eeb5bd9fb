"""Helpers the commands share: mutually exclusive output flags and `--help` examples."""

from __future__ import annotations

from gitstage.cli.oneline import UsageLine


def one_of(**flags: bool) -> str | None:
    """The one flag given (its name), None for none; two or more is a usage error, not a pick."""
    given = [name for name, on in flags.items() if on]
    if len(given) > 1:
        spelled = " and ".join(f"--{name.replace('_', '-')}" for name in given)
        raise UsageLine(f"{spelled} are mutually exclusive")
    return given[0] if given else None


def examples(*lines: str) -> str:
    """An epilog listing example command lines (click keeps `\\b` blocks as written)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)
