"""Reading, the use case: a registry's `show --json` document, through the result cache.

Beside writing.py, fetching.py and checking.py. `show_json_text` serves both entry points of
`gitstage show --json`: click's command and `cli/show_json.py`'s `fast_main`, which answers
before click is even imported (importing click costs more than a warm answer). So this module
stays light: the modules that compute a document are imported only on a cache miss, inside the
functions that need them.
"""

from __future__ import annotations

from gitstage.adapters.git.result_cache import ResultCache, request_key, result_key
from gitstage.adapters.git.source import RegistrySource, find_dirs, open_source

TYPE_CHECKING = False  # typing's own costs an import; mypy reads any TYPE_CHECKING as True
if TYPE_CHECKING:
    from typing import Any

    from gitstage.adapters.git.reader import Registry
    from gitstage.domain.registry.views import ViewOptions


class ShowRequest:
    """The arguments that decide `show --json`'s document."""

    __slots__ = ("av", "deprecated", "name", "registered_only", "repo", "sort", "vs")

    def __init__(  # noqa: PLR0917 - the fast path builds it positionally
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
    from gitstage.domain.registry.gto_json import registry_document, versions_document
    from gitstage.domain.registry.views import ViewOptions

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


def show_versions(registry: Registry, name: str, options: ViewOptions) -> list[Any]:
    """The rows of `show NAME` (NAME may be `name@latest`, `name@vX.Y.Z`, `name#stage`)."""
    from gitstage.domain.registry.tags import parse_shortcut
    from gitstage.domain.registry.views import find_artifact, list_versions, select_versions

    shortcut = parse_shortcut(name)
    rows = list_versions(find_artifact(registry.state, shortcut.name), options)
    return select_versions(
        rows, latest=shortcut.latest, version=shortcut.version, stage=shortcut.stage
    )
