"""`gitstage show [NAME] --json` on the fast path: the command line read without click.

`fast_main` answers the plain forms of that command before click is even imported (importing
click costs more than a warm answer), with the document of `gitstage.reading.show_json_text`.
It understands only a strict subset of the command line (the flags that change the JSON,
spelled as click accepts them); anything else, `--help` or a bad value included, returns None
and click handles the command with its own parsing and messages. Any failure on the fast path
also returns None, so errors are always reported by the click command, in its words."""

from __future__ import annotations

import sys

from gitstage.reading import ShowRequest, keep_until_exit, show_json_text

TYPE_CHECKING = False  # typing's own costs an import; mypy reads any TYPE_CHECKING as True
if TYPE_CHECKING:
    from collections.abc import Sequence  # importing collections costs 2 ms at run time

SORTS = ("timestamp", "semver")
_FLAGS = {
    "--json": "json",
    "--ro": "registered_only",
    "--registered-only": "registered_only",
    "-d": "deprecated",
    "--deprecated": "deprecated",
}
_VALUED = {
    "-r": "repo",
    "--repo": "repo",
    "--av": "av",
    "--assignments-per-version": "av",
    "--vs": "vs",
    "--versions-per-stage": "vs",
    "--sort": "sort",
}


def parse_argv(argv: Sequence[str]) -> ShowRequest | None:
    """`show ... --json` in the forms click accepts; None for anything else (click's job)."""
    if not argv or argv[0] != "show":
        return None
    values: dict[str, object] = {}
    names: list[str] = []
    tokens = iter(argv[1:])
    for token in tokens:
        option, equals, attached = token.partition("=")
        if token in _FLAGS:
            values[_FLAGS[token]] = True
        elif option in _VALUED and option.startswith("--") and equals:
            values[_VALUED[option]] = attached
        elif token in _VALUED:
            value = next(tokens, None)
            if value is None:
                return None
            values[_VALUED[token]] = value
        elif token.startswith("-"):
            return None  # help, other flags, attached short values, `--`: click decides
        else:
            names.append(token)
    return _request(values, names)


def _request(values: dict[str, object], names: list[str]) -> ShowRequest | None:
    if not values.pop("json", False) or len(names) > 1:
        return None
    try:
        av, vs = int(str(values.get("av", -1))), int(str(values.get("vs", 1)))
    except ValueError:
        return None
    sort = str(values.get("sort", "timestamp"))
    if sort not in SORTS:
        return None
    return ShowRequest(
        names[0] if names else None,
        str(values.get("repo", ".")),
        bool(values.get("registered_only", False)),
        bool(values.get("deprecated", False)),
        av,
        vs,
        sort,
    )


def fast_main(argv: Sequence[str]) -> int | None:
    """Print `show --json`'s document and return 0, or None to let click run the command."""
    request = parse_argv(argv)
    if request is None:
        return None
    keep_until_exit()  # this process ends after printing the document
    try:
        text = show_json_text(request)
    except Exception:
        return None  # click runs the command again and reports the error in one line
    sys.stdout.write(text)
    sys.stdout.flush()
    return 0
