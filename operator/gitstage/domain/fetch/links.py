"""Links between repositories, in an artifacts.yaml entry's `custom` field (the seed's `mlem link`).

    churn:
      type: model
      custom:
        gitstage:
          link:
            repo: https://git.example.com/team/churn.git   # where the bytes are
            rev: 3f6c0e1...                                  # a commit (or a tag/branch name)
            artifact: churn       # optional: look its path up in that repo's artifacts.yaml
            path: models/churn    # optional: or give the path directly (wins over `artifact`)

Without `path` and `artifact`, the entry of the same name in the linked repository is used.
Namespacing under `gitstage:` keeps other tools' `custom` data (say a `link` to a paper) apart.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from gitstage.domain.fetch.errors import BadInputError, FetchError
from gitstage.domain.fetch.repo_paths import safe_relative
from gitstage.domain.registry.index import ArtifactAnnotation
from gitstage.domain.registry.names import is_valid_fullname

CUSTOM_KEY = "gitstage"
LINK_KEY = "link"
MAX_LINK_DEPTH = 8
_REV_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/@#=+-]*$")  # GTO tag names too


class ArtifactLink(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    repo: str
    rev: str
    path: str | None = None
    artifact: str | None = None

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: str) -> str:
        if not is_valid_repo(value):
            raise ValueError("'repo' must be a repository URL or path")
        return value

    @field_validator("rev")
    @classmethod
    def _rev(cls, value: str) -> str:
        if not is_valid_rev(value):
            raise ValueError("'rev' must be a commit SHA or a tag/branch name")
        return value

    @field_validator("artifact")
    @classmethod
    def _artifact(cls, value: str | None) -> str | None:
        if value is not None and not is_valid_fullname(value):
            raise ValueError(f"'artifact' {value!r} is not a valid artifact name")
        return value


def is_valid_repo(value: str) -> bool:
    """A URL or scp-like `host:path` without blanks, or a local path, which may hold spaces
    (`/srv/team repos/churn`) but no other blank or control character."""
    if not value.strip() or value != value.strip() or value.startswith("-"):
        return False
    if _is_local_path(value):
        return value.isprintable()
    return not any(c.isspace() for c in value)


def _is_local_path(value: str) -> bool:
    """Neither `scheme://...` nor scp-like `host:path` (git's own rule for a local repository)."""
    return "://" not in value and ":" not in value.split("/", 1)[0]


def validation_problem(error: ValidationError) -> tuple[str, str]:
    """The field and the reason of a link's first validation error, for a one-line message."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "link"
    message = "required" if first["type"] == "missing" else str(first["msg"])
    return field, message.removeprefix("Value error, ")


def is_valid_rev(value: str) -> bool:
    """A full commit SHA or a ref name that git accepts and that cannot be read as an option."""
    return (
        bool(_REV_RE.match(value))
        and ".." not in value
        and "@{" not in value
        and not value.endswith((".lock", "/"))
    )


def link_of(name: str, annotation: ArtifactAnnotation) -> ArtifactLink | None:
    """The link an entry declares, None if it declares none; malformed links are errors."""
    section = _section(annotation.custom)
    if section is None:
        return None
    where = f"artifact {name!r}: custom.{CUSTOM_KEY}.{LINK_KEY}"
    if not isinstance(section, dict):
        raise BadInputError(f"{where} must be a mapping with 'repo' and 'rev'")
    try:
        link = ArtifactLink.model_validate(section)
    except ValidationError as error:
        field, message = validation_problem(error)
        raise BadInputError(f"{where}: {field}: {message}") from None
    if link.path is not None:
        try:
            safe_relative(link.path, "path")
        except FetchError as error:  # keeps its class: an escaping path is unsafe, exit 4
            raise type(error)(f"{where}: {error}") from None
    return link


def _section(custom: Any) -> Any:
    if not isinstance(custom, dict):
        return None
    ours = custom.get(CUSTOM_KEY)
    if not isinstance(ours, dict):
        return None
    return ours.get(LINK_KEY)
