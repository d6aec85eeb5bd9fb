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
    from gitstage.adapters.git.row_cache import RowCache
    from gitstage.domain.registry.views import ViewOptions


# What a computed document was made of, kept by a process that ends right after printing it
# (the console script's fast path, see `keep_until_exit`); None: freed as usual.
_kept: list[object] | None = None


def keep_until_exit() -> None:
    """Keep the objects of documents computed from now on instead of freeing them, and never
    free them: freeing a large registry's state costs 0.2 s that a process about to end need
    not pay. For a process that exits after one document only (it never gets the memory
    back); nothing else changes, and exit runs as usual."""
    global _kept  # noqa: PLW0603 - one switch for the whole process
    if _kept is None:
        _kept = []
        _kept.append(_kept)  # a cycle: no reference count ever drops to zero


def _keep(read: object) -> None:
    import gc

    if _kept is not None:
        _kept.append(read)
        # Out of the collector's reach, even at exit: it would walk every object of the state.
        gc.freeze()


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
        text, complete = compute_json_text(source, request, request_digest)
    if complete:
        cache.put(key, text, request_digest, source.stamps)
    return text


def compute_json_text(
    source: RegistrySource, request: ShowRequest, request_digest: bytes = b""
) -> tuple[str, bool]:
    """The document and whether every object it needed was present. The whole registry's
    document refolds only the artifacts whose tags changed since the last run (row_cache.py)."""
    import json

    if request.name is None and request_digest:
        from gitstage.adapters.git.row_cache import RowCache

        rows = RowCache.open(source.dirs.common_dir)
        if rows.path is not None:
            whole, complete = incremental_document(source, request, rows, request_digest)
            return json.dumps(whole, indent=4) + "\n", complete
    from gitstage.adapters.git.reader import read_source
    from gitstage.domain.registry.gto_json import registry_document, versions_document

    options = view_options(request)
    registry = read_source(source)
    document: object = (
        registry_document(registry.state, options, registry.config.stages)
        if request.name is None
        else versions_document(show_versions(registry, request.name, options))
    )
    _keep(registry)
    # Byte-compatible with gto: `json.dumps(..., indent=4)` and a newline.
    return json.dumps(document, indent=4) + "\n", registry.complete


def view_options(request: ShowRequest) -> ViewOptions:
    from gitstage.domain.registry.views import ViewOptions

    r = request
    return ViewOptions.from_flags(r.registered_only, r.deprecated, r.av, r.vs, r.sort)


def incremental_document(
    source: RegistrySource, request: ShowRequest, rows: RowCache, request_digest: bytes
) -> tuple[dict[str, Any], bool]:
    """`show --json`'s document from the stored lines, refolding the changed artifacts only.

    A read that fails is repeated in full, which names the problem as GTO would."""
    from hashlib import blake2b

    from gitstage.adapters.git.incremental import refold_changed
    from gitstage.adapters.git.reader import READ_ERRORS, read_source
    from gitstage.adapters.git.row_cache import HeldRow
    from gitstage.domain.registry.gto_json import artifact_row, document_from_rows
    from gitstage.domain.registry.names import tag_to_name
    from gitstage.domain.registry.views import artifact_stages

    basis = blake2b(request_digest, digest_size=32)
    basis.update(repr((source.head_oid, source.config_text)).encode())
    held, known_head = rows.held_for(basis.digest())
    try:
        read = refold_changed(source, known_head, {g: row.digest for g, row in held.items()})
    except READ_ERRORS:
        read_source(source)  # raises the first problem as a full read names it
        raise  # not reached unless the two reads disagree
    context, digests, folded = read.context, read.digests, read.folded
    options = view_options(request)
    current = {g: held[g] for g in digests if g not in folded}
    for group, fold in folded.items():
        artifact = fold.artifact
        row = None if artifact is None else artifact_row(artifact, options)
        used = () if artifact is None else tuple(sorted(artifact_stages(artifact)))
        current[group] = HeldRow(digests[group], fold.order, row, used)
    present = sorted((r.order, g) for g, r in current.items() if r.order is not None)
    configured = context.config.stages
    stages = (
        list(configured)
        if configured is not None
        else sorted({s for _, g in present for s in current[g].stages})
    )
    document = document_from_rows(((tag_to_name(g), current[g].row) for _, g in present), stages)
    complete = context.objects.complete
    if complete and folded:
        rows.save(basis.digest(), (context.head, context.head_artifacts), current)
    _keep(read)
    return document, complete


def show_versions(registry: Registry, name: str, options: ViewOptions) -> list[Any]:
    """The rows of `show NAME` (NAME may be `name@latest`, `name@vX.Y.Z`, `name#stage`)."""
    from gitstage.domain.registry.tags import parse_shortcut
    from gitstage.domain.registry.views import find_artifact, list_versions, select_versions

    shortcut = parse_shortcut(name)
    rows = list_versions(find_artifact(registry.state, shortcut.name), options)
    return select_versions(
        rows, latest=shortcut.latest, version=shortcut.version, stage=shortcut.stage
    )
