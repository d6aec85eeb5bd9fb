"""DVC 3 metadata read from a commit: `.dvc` files, `dvc.lock`, `.dvc/config`, `.dir` listings.

Only what locating and verifying an output needs. DVC 3 outputs carry `hash: md5` (plain md5 of
the content) and live under `files/md5/XX/REST` in a remote; DVC 2 outputs (md5 of dos2unix'ed
text, stored at `XX/REST`) are refused as unsupported.
"""

from __future__ import annotations

import configparser
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from gitstage.domain.fetch.errors import BadInputError, UnsupportedError
from gitstage.domain.fetch.repo_paths import ROOT, check_depth, join_within, safe_relative
from gitstage.domain.yaml_bounds import YamlBoundsError, safe_load_bounded

DVCFILE_SUFFIX = ".dvc"
LOCK_FILE = "dvc.lock"
PROJECT_FILE = "dvc.yaml"
DVC_DIR = ".dvc"
CONFIG_FILE = "config"
DIR_SUFFIX = ".dir"
LEGACY_PREFIX = "legacy:"
MD5_RE = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class DvcOut:
    """An output declared at a commit; `md5` ends with `.dir` for directories."""

    path: PurePosixPath
    md5: str
    size: int | None
    nfiles: int | None
    remote: str | None
    declared_in: PurePosixPath

    @property
    def is_dir(self) -> bool:
        return self.md5.endswith(DIR_SUFFIX)

    @property
    def object_key(self) -> str:
        return object_key(self.md5)


def object_key(md5: str) -> str:
    """Where DVC 3 stores an object in a remote or cache."""
    return f"files/md5/{md5[:2]}/{md5[2:]}"


class _RawOut(BaseModel):
    model_config = ConfigDict(extra="ignore")

    path: str
    md5: str | None = None
    hash: str | None = None
    size: int | None = None
    nfiles: int | None = None
    remote: str | None = None
    cache: bool = True


_OUTS = TypeAdapter(list[_RawOut])


def _load_yaml(text: bytes, where: PurePosixPath) -> Any:
    try:
        return safe_load_bounded(text, str(where))
    except YamlBoundsError as error:
        raise BadInputError(str(error)) from None
    except yaml.YAMLError:
        raise BadInputError(f"{where} is not valid YAML") from None


def _outs(raw: Any, where: PurePosixPath) -> list[_RawOut]:
    try:
        return _OUTS.validate_python(raw or [])
    except ValidationError as error:
        raise BadInputError(f"{where}: malformed outs ({error.errors()[0]['msg']})") from None


def _typed_out(raw: _RawOut, base: list[str], where: PurePosixPath) -> DvcOut | None:
    """None for outputs that are not in a DVC cache or lie outside the repository."""
    if not raw.cache or raw.path.startswith("/") or "://" in raw.path:
        return None
    path = PurePosixPath(*join_within(base, raw.path, f"{where}: out {raw.path!r}"))
    md5 = raw.md5 or ""
    if raw.hash != "md5":
        md5 = LEGACY_PREFIX + md5  # DVC 2: still found by lookups, refused when materialized
    return DvcOut(path, md5, raw.size, raw.nfiles, raw.remote, where)


def check_supported(out: DvcOut) -> None:
    if out.md5.startswith(LEGACY_PREFIX):
        raise UnsupportedError(
            f"{out.path} is tracked in DVC 2 format (md5-dos2unix) by {out.declared_in};"
            " re-add it with DVC 3"
        )
    stem = out.md5.removesuffix(DIR_SUFFIX)
    if not MD5_RE.match(stem):
        raise BadInputError(f"{out.declared_in}: out {out.path} has no valid md5")


def parse_dvcfile(text: bytes, where: PurePosixPath) -> list[DvcOut]:
    """A `.dvc` file: outs are relative to the file's directory."""
    document = _load_yaml(text, where)
    if not isinstance(document, dict):
        raise BadInputError(f"{where} is not a DVC file")
    base = list(where.parent.parts)
    typed = (_typed_out(raw, base, where) for raw in _outs(document.get("outs"), where))
    return [out for out in typed if out is not None]


def parse_lockfile(text: bytes, project: bytes | None, where: PurePosixPath) -> list[DvcOut]:
    """`dvc.lock` (schema 2.0); outs are relative to each stage's `wdir` from `dvc.yaml`."""
    document = _load_yaml(text, where)
    if not isinstance(document, dict) or str(document.get("schema")) != "2.0":
        raise UnsupportedError(f"{where}: only the DVC 2/3 lock schema '2.0' is supported")
    stages = document.get("stages") or {}
    if not isinstance(stages, dict):
        raise BadInputError(f"{where}: 'stages' is not a mapping")
    wdirs = _stage_wdirs(project, where.parent / PROJECT_FILE)
    found: list[DvcOut] = []
    for stage, body in stages.items():
        wdir = wdirs.get(str(stage).split("@", 1)[0], ".")
        if "${" in wdir or not isinstance(body, dict):
            continue  # templated wdir: cannot be resolved without DVC's interpolation
        base = join_within(list(where.parent.parts), wdir, f"{where}: wdir of {stage}")
        for raw in _outs(body.get("outs"), where):
            out = _typed_out(raw, base, where)
            if out is not None:
                found.append(out)
    return found


def _stage_wdirs(project: bytes | None, where: PurePosixPath) -> dict[str, str]:
    if project is None:
        return {}
    document = _load_yaml(project, where)
    stages = document.get("stages") if isinstance(document, dict) else None
    wdirs: dict[str, str] = {}
    for name, body in (stages or {}).items():
        if not isinstance(body, dict):
            continue
        inner = body.get("do") if isinstance(body.get("do"), dict) else body
        wdir = inner.get("wdir") if isinstance(inner, dict) else None
        if isinstance(wdir, str):
            wdirs[str(name)] = wdir
    return wdirs


def find_out(outs: list[DvcOut], path: PurePosixPath) -> tuple[DvcOut, PurePosixPath] | None:
    """The output that is `path` or a directory containing it, with the path inside it."""
    for out in outs:
        if out.path == path:
            return out, ROOT
        if out.is_dir and out.path in path.parents:
            return out, path.relative_to(out.path)
    return None


@dataclass(frozen=True)
class DvcRemote:
    name: str
    url: str
    endpoint_url: str | None = None  # `endpointurl`: an S3-compatible server (MinIO, Ceph...)


@dataclass(frozen=True)
class DvcConfig:
    default_remote: str | None
    remotes: dict[str, DvcRemote]

    def remote(self, name: str | None, where: str) -> DvcRemote:
        chosen = name or self.default_remote
        if chosen is None:
            raise BadInputError(f"no default DVC remote is configured in {where}")
        if chosen not in self.remotes:
            raise BadInputError(f"DVC remote {chosen!r} is not defined in {where}")
        return self.remotes[chosen]


_REMOTE_SECTION = re.compile(r"""^'?remote\s+"(?P<name>[^"]+)"'?$""")


def parse_dvc_config(text: bytes | None, where: str) -> DvcConfig:
    """`.dvc/config` (configobj INI with sections like `['remote "name"']`)."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string((text or b"").decode("utf-8"), source=where)
    except (configparser.Error, UnicodeDecodeError):
        raise BadInputError(f"{where} is not a valid DVC config") from None
    remotes: dict[str, DvcRemote] = {}
    for section in parser.sections():
        match = _REMOTE_SECTION.match(section.strip())
        if match and parser.has_option(section, "url"):
            name = match["name"]
            endpoint = parser.get(section, "endpointurl", fallback="").strip() or None
            remotes[name] = DvcRemote(name, parser.get(section, "url").strip(), endpoint)
    default = parser.get("core", "remote", fallback=None)
    return DvcConfig(default.strip() if default else None, remotes)


@dataclass(frozen=True)
class DirEntry:
    relpath: PurePosixPath
    md5: str


class _RawEntry(BaseModel):
    model_config = ConfigDict(extra="ignore")

    md5: str
    relpath: str


_ENTRIES = TypeAdapter(list[_RawEntry])


def parse_dir_listing(data: bytes, where: str) -> list[DirEntry]:
    """A `.dir` object: JSON list of {md5, relpath}; relpaths must stay inside the directory.

    pydantic's parser bounds nesting (`json.loads` recurses: `[[[[...` exhausts the stack) and
    refuses lone surrogates, which no file name written to disk or a manifest could hold."""
    try:
        raw = _ENTRIES.validate_json(data)
    except ValidationError:
        raise BadInputError(f"{where} is not a DVC directory listing") from None
    entries: list[DirEntry] = []
    seen: set[PurePosixPath] = set()
    for item in raw:
        relpath = safe_relative(item.relpath, f"entry of {where}")
        check_depth(relpath, f"entry of {where}")
        if not MD5_RE.match(item.md5):
            raise BadInputError(f"{where}: entry {item.relpath!r} has an invalid md5")
        if relpath in seen:
            raise BadInputError(f"{where}: duplicate entry {item.relpath!r}")
        seen.add(relpath)
        entries.append(DirEntry(relpath, item.md5))
    return entries
