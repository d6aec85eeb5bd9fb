"""`gitstage show [NAME] --json`: the document, through the result cache, with or without click.

`show_json_text` serves both entry points: click's `show --json` and `fast_main`, which answers
the plain forms of that command before click is even imported (importing click costs more than a
warm answer). `fast_main` understands only a strict subset of the command line (the flags that
change the JSON, spelled as click accepts them); anything else, `--help` or a bad value included,
returns None and click handles the command with its own parsing and messages. Any failure on the
fast path also returns None, so errors are always reported by the click command, in its words.

The modules that compute a document are imported only on a cache miss.
"""

from __future__ import annotations

import sys

from gitstage.adapters.git.result_cache import ResultCache, request_key, result_key
from gitstage.adapters.git.source import RegistrySource, find_dirs, open_source

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


class ShowRequest:
    """The arguments that decide `show --json`'s document."""

    __slots__ = ("av", "deprecated", "name", "registered_only", "repo", "sort", "vs")

    def __init__(
        self,
        name: str | None = None,
        repo: str = ".",
        registered_only: bool = False,
        deprecated: bool = False,
        av: int = -1,
        vs: int = 1,
        sort: str = "timestamp",
    ) -> None:
        self.name = name
        self.repo = repo
        self.registered_only = registered_only
        self.deprecated = deprecated
        self.av = av
        self.vs = vs
        self.sort = sort

    def key_parts(self) -> tuple[object, ...]:
        """Everything but the repository path (the key names the repository by its git dir)."""
        r = self
        return ("show --json", r.name, r.registered_only, r.deprecated, r.av, r.vs, r.sort)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ShowRequest)
            and self.key_parts() == other.key_parts()
            and self.repo == other.repo
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ShowRequest{(self.repo, *self.key_parts()[1:])!r}"


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


def show_json_text(request: ShowRequest) -> str:
    """The printed document (with its final newline), from the result cache when it holds it.

    First without listing refs (an entry whose stamped files are unchanged), then by the key of
    the full listing, and only then computed.
    """
    dirs = find_dirs(request.repo)
    cache = ResultCache.open(dirs.common_dir)
    request_digest = request_key(
        request=request.key_parts(), git_dir=dirs.git_dir, workdir=dirs.workdir
    )
    text = cache.get_unchanged(request_digest)
    if text is not None:
        return text
    source = open_source(dirs)
    key = result_key(
        request_digest, tags=source.tags, head=source.head_oid, config_text=source.config_text
    )
    text = cache.get(key)
    if text is not None:
        if source.stamps is not None:  # the refs were rewritten, not changed: restamp
            cache.put(key, text, request_digest, source.stamps)
        return text
    from gitstage.adapters.git.gc_pause import gc_paused

    with gc_paused():
        text, complete = compute_json_text(source, request)
    if complete:
        cache.put(key, text, request_digest, source.stamps)
    return text


def compute_json_text(source: RegistrySource, request: ShowRequest) -> tuple[str, bool]:
    """The document and whether every object it needed was present."""
    import json

    from gitstage.adapters.git.reader import read_source
    from gitstage.api import show_versions
    from gitstage.domain.gto_json import registry_document, versions_document
    from gitstage.domain.views import ViewOptions

    r = request
    options = ViewOptions.from_flags(r.registered_only, r.deprecated, r.av, r.vs, r.sort)
    registry = read_source(source)
    document: object = (
        registry_document(registry.state, options, registry.config.stages)
        if r.name is None
        else versions_document(show_versions(registry, r.name, options))
    )
    # Byte-compatible with gto: `json.dumps(..., indent=4)` and a newline.
    return json.dumps(document, indent=4) + "\n", registry.complete


def fast_main(argv: Sequence[str]) -> int | None:
    """Print `show --json`'s document and return 0, or None to let click run the command."""
    request = parse_argv(argv)
    if request is None:
        return None
    try:
        text = show_json_text(request)
    except Exception:
        return None  # click runs the command again and reports the error in one line
    sys.stdout.write(text)
    sys.stdout.flush()
    return 0
