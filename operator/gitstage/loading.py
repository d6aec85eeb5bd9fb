"""Turn a fetched artifact into a Python object for `gitstage.api.load` (as `mlem.api.load`).

WARNING: unpickling runs code. A pickle or joblib file from a registry can do anything the
loading process can; load only from registries you trust, and prefer `require_signed=True`.

The loader is chosen by, in order: the caller's `loader=`, the artifacts.yaml entry's
`custom.gitstage.loader`, its `type` when a loader has that name, then the file extension.
Built in: `pickle` (.pkl, .pickle) and `joblib` (.joblib; needs joblib installed). Plugins add
loaders as entry points of the group `gitstage.loaders`: the name is a loader name or an
extension with its dot (".onnx"), the value a callable taking the path and returning the object.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from gitstage.domain.fetch.links import CUSTOM_KEY
from gitstage.domain.registry.index import ArtifactAnnotation

ENTRY_POINT_GROUP = "gitstage.loaders"
LOADER_KEY = "loader"
Loader = Callable[[Path], Any]


class LoaderError(LookupError):
    """No loader fits the artifact, or the one named does not exist; one line."""


class UnsignedPromotionError(PermissionError):
    """`require_signed=True` and the stage's assignment tag is not validly signed."""


def _load_pickle(path: Path) -> Any:
    with path.open("rb") as handle:
        return pickle.load(handle)  # noqa: S301 - see the module's warning


def _load_joblib(path: Path) -> Any:
    try:
        import joblib  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:
        raise LoaderError(f"{path.name} needs joblib: pip install 'gitstage[joblib]'") from None
    return joblib.load(path)


BUILT_IN: dict[str, Loader] = {"pickle": _load_pickle, "joblib": _load_joblib}
EXTENSIONS: dict[str, str] = {".pkl": "pickle", ".pickle": "pickle", ".joblib": "joblib"}


def loaders() -> dict[str, Loader]:
    """Built-in loaders, then plugins (a plugin may replace a built-in by using its name)."""
    found: dict[str, Loader] = dict(BUILT_IN)
    for extension, name in EXTENSIONS.items():
        found[extension] = BUILT_IN[name]
    for point in entry_points(group=ENTRY_POINT_GROUP):
        found[point.name] = point.load()
    return found


def choose_loader(
    path: Path, annotation: ArtifactAnnotation | None, requested: str | None = None
) -> Loader:
    available = loaders()
    if requested is not None:
        if requested not in available:
            known = ", ".join(sorted(available))
            raise LoaderError(f"no loader named {requested!r} (known: {known})")
        return available[requested]
    named = _declared_loader(annotation)
    if named is not None:
        if named not in available:
            raise LoaderError(f"artifacts.yaml names loader {named!r}, which is not installed")
        return available[named]
    if annotation is not None and annotation.type in available:
        return available[annotation.type]
    extension = path.suffix.lower()
    if path.is_file() and extension in available:
        return available[extension]
    raise LoaderError(
        f"no loader for {path.name}: set custom.{CUSTOM_KEY}.{LOADER_KEY} in artifacts.yaml,"
        " pass loader=, or install a plugin"
    )


def _declared_loader(annotation: ArtifactAnnotation | None) -> str | None:
    custom = annotation.custom if annotation is not None else None
    ours = custom.get(CUSTOM_KEY) if isinstance(custom, dict) else None
    value = ours.get(LOADER_KEY) if isinstance(ours, dict) else None
    return value if isinstance(value, str) else None


def load_file(
    path: Path, annotation: ArtifactAnnotation | None, requested: str | None = None
) -> Any:
    return choose_loader(path, annotation, requested)(path)


def require_signed_promotion(repo: str, name: str, stage: str) -> str:
    """The assignment tag of the stage's holder; refused unless signed by a trusted key."""
    from gitstage.adapters.git.policy_reader import promotion_signature, trust_files
    from gitstage.adapters.git.reader import read_registry
    from gitstage.adapters.git.repository import open_repository
    from gitstage.adapters.mirror.locate import open_for_read
    from gitstage.domain.policy.rules import SignatureKind
    from gitstage.domain.registry.selection import Selector, resolve

    target = open_for_read(repo)
    resolution = resolve(read_registry(target.path).state, name, Selector(stage=stage))
    tag = resolution.assignment_tag
    assert tag is not None  # a stage resolution always has its assignment
    git = open_repository(target.path)
    if target.mirror is not None:
        for file in trust_files(git):
            target.mirror.ensure_blob("HEAD", file)
        git = open_repository(target.path)
    status = promotion_signature(git, tag)
    if status.kind is not SignatureKind.VALID:
        detail = f" ({status.detail})" if status.detail else ""
        raise UnsignedPromotionError(
            f"{tag} is {status.kind.value}{detail}: not a signed promotion by a trusted key"
        )
    return tag
