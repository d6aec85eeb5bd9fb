"""`ModelRegistry` (gitstage.dev/v1alpha1): a GTO registry repository served as Deployments."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

GROUP = "gitstage.dev"
VERSION = "v1alpha1"
KIND = "ModelRegistry"
PLURAL = "modelregistries"
SINGULAR = "modelregistry"
SHORT_NAMES = ["mreg"]

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
GTO_NAME_PATTERN = r"^([a-zA-Z0-9-_./]+:)?[a-zA-Z0-9]([a-zA-Z0-9-/_]*[a-zA-Z0-9])?$"
GTO_STAGE_PATTERN = r"^[a-zA-Z0-9]([a-zA-Z0-9-/_]*[a-zA-Z0-9])?$"
VERSION_PATTERN = (
    r"^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$"
)
URL_PATTERN = r"^(https?://|ssh://|file://|[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+:).+"


class Model(BaseModel):
    """CRD models: camelCase on the wire, unknown fields rejected before they reach the cluster."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


class LocalObjectReference(Model):
    name: Annotated[
        str,
        Field(min_length=1, max_length=253, description="Name of a Secret in the same namespace."),
    ]


# `scheme://user:password@host`: the fetcher's pods would carry the password in their spec.
CREDENTIALS_IN_URL = "^[a-zA-Z][a-zA-Z0-9+.-]*://[^/@]*:[^/@]*@"
NO_CREDENTIALS_IN_URL = f"!self.url.matches('{CREDENTIALS_IN_URL}')"
URL_CREDENTIALS_MESSAGE = (
    "spec.source.url must not hold a password (it would reach every pod's spec);"
    " put the credentials in the Secret named by spec.source.secretRef"
)


class GitSource(Model):
    """Where the registry lives and how often to look at it."""

    model_config = ConfigDict(
        alias_generator=camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": NO_CREDENTIALS_IN_URL, "message": URL_CREDENTIALS_MESSAGE}
            ]
        },
    )

    url: Annotated[
        str,
        Field(
            pattern=URL_PATTERN,
            description="Repository URL: https://, ssh://, git@host:path or file://.",
        ),
    ]

    @field_validator("url")
    @classmethod
    def _no_password(cls, url: str) -> str:
        if re.match(CREDENTIALS_IN_URL, url):
            raise ValueError(URL_CREDENTIALS_MESSAGE)
        return url

    branch: Annotated[
        str,
        Field(
            default="main",
            min_length=1,
            description="Branch whose tip is GTO's HEAD (artifacts.yaml discovery).",
        ),
    ]
    interval: Annotated[
        str,
        Field(
            default="1m",
            pattern=DURATION_PATTERN,
            description="How often to list the remote's refs (jittered by up to 10%), e.g. 1m.",
        ),
    ]
    timeout: Annotated[
        str,
        Field(default="60s", pattern=DURATION_PATTERN, description="Timeout of one git operation."),
    ]
    secret_ref: Annotated[
        LocalObjectReference | None,
        Field(
            default=None,
            description=(
                "Secret with `username` and `password` (HTTPS basic or token), `bearerToken`, "
                "or `identity` and `known_hosts` (SSH)."
            ),
        ),
    ]


class VersionSort(StrEnum):
    TIMESTAMP = "timestamp"
    SEMVER = "semver"


class Resolution(Model):
    """How a stage is resolved; the defaults are `gto show NAME#STAGE`'s."""

    model_config = ConfigDict(
        alias_generator=camel, populate_by_name=True, extra="forbid", frozen=True
    )

    sort: Annotated[
        VersionSort,
        Field(
            default=VersionSort.TIMESTAMP,
            description=(
                "timestamp: the latest assignment wins (gto show). "
                "semver: the highest assigned version wins (gto's find_versions_in_stage)."
            ),
        ),
    ]
    registered_only: Annotated[
        bool,
        Field(default=False, description="Ignore stage tags on commits without a version tag."),
    ]


class EmptyStagePolicy(StrEnum):
    KEEP = "Keep"
    SCALE_TO_ZERO = "ScaleToZero"


class Fetcher(Model):
    """The init container that materializes the model before the serving containers start."""

    model_config = ConfigDict(
        alias_generator=camel, populate_by_name=True, extra="forbid", frozen=True
    )

    image: Annotated[
        str | None,
        Field(default=None, description="Fetcher image; defaults to the operator's own image."),
    ]
    resources: Annotated[
        dict[str, Any] | None,
        Field(default=None, description="Resource requests and limits of the init container."),
    ]
    secret_ref: Annotated[
        LocalObjectReference | None,
        Field(
            default=None,
            description="Secret given to the fetcher as environment (DVC storage credentials).",
        ),
    ]


class PodTemplate(Model):
    """The serving pod: containers and pod settings, as in a Deployment's template."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metadata: Annotated[
        dict[str, Any],
        Field(default_factory=dict, description="Labels and annotations added to the pods."),
    ]
    spec: Annotated[
        dict[str, Any],
        Field(
            description="A PodSpec; its containers serve the model mounted at modelPath.",
            json_schema_extra={
                "type": "object",
                "required": ["containers"],
                "properties": {
                    "containers": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    }
                },
                "x-kubernetes-preserve-unknown-fields": True,
            },
        ),
    ]

    @field_validator("spec")
    @classmethod
    def _has_containers(cls, spec: dict[str, Any]) -> dict[str, Any]:
        containers = spec.get("containers")
        if not isinstance(containers, list) or not containers:
            raise ValueError("template.spec.containers needs at least one container")
        return spec


ONE_OF_STAGE_OR_VERSION = "has(self.stage) != has(self.version)"


class DeploymentBinding(Model):
    """One Deployment serving one artifact at a stage (or a pinned version)."""

    model_config = ConfigDict(
        alias_generator=camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": ONE_OF_STAGE_OR_VERSION, "message": "set exactly one of stage or version"}
            ]
        },
    )

    name: Annotated[
        str,
        Field(
            min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN, description="Deployment name."
        ),
    ]
    artifact: Annotated[
        str,
        Field(
            min_length=1,
            pattern=GTO_NAME_PATTERN,
            description="GTO artifact name, e.g. churn or dir:churn.",
        ),
    ]
    stage: Annotated[
        str | None,
        Field(default=None, pattern=GTO_STAGE_PATTERN, description="Stage to follow, e.g. prod."),
    ]
    version: Annotated[
        str | None,
        Field(
            default=None, pattern=VERSION_PATTERN, description="Pinned version instead of a stage."
        ),
    ]
    replicas: Annotated[
        int | None,
        Field(
            default=None,
            ge=0,
            description="Replicas; leave unset to let an HPA or kubectl scale own the field.",
        ),
    ]
    model_path: Annotated[
        str,
        Field(
            default="/mnt/models",
            pattern=r"^/.*$",
            description="Where the model is mounted (read-only) in the serving containers.",
        ),
    ]
    template: PodTemplate
    fetcher: Annotated[Fetcher, Field(default_factory=Fetcher)]
    on_empty_stage: Annotated[
        EmptyStagePolicy,
        Field(
            default=EmptyStagePolicy.KEEP,
            description=(
                "When nobody holds the stage or the artifact is deprecated: keep serving the "
                "last version (Keep) or scale the Deployment to zero (ScaleToZero)."
            ),
        ),
    ]

    @model_validator(mode="after")
    def _one_of_stage_or_version(self) -> DeploymentBinding:
        if (self.stage is None) == (self.version is None):
            raise ValueError("set exactly one of stage or version")
        return self


class ModelRegistrySpec(Model):
    model_config = ConfigDict(
        alias_generator=camel, populate_by_name=True, extra="forbid", frozen=True
    )

    source: GitSource
    resolution: Annotated[Resolution, Field(default_factory=Resolution)]
    suspend: Annotated[
        bool,
        Field(default=False, description="Stop polling and reconciling; workloads keep running."),
    ]
    deployments: Annotated[
        list[DeploymentBinding],
        Field(
            default_factory=list,
            max_length=100,
            description="Deployments to keep in line with the registry (unique names).",
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
            },
        ),
    ]


# Status -------------------------------------------------------------------------------------


class Condition(Model):
    model_config = ConfigDict(
        alias_generator=camel, populate_by_name=True, extra="forbid", frozen=True
    )

    type: str
    status: Annotated[str, Field(pattern="^(True|False|Unknown)$")]
    reason: str
    message: str = ""
    last_transition_time: str
    observed_generation: int | None = None


class StageState(Model):
    model_config = ConfigDict(
        alias_generator=camel, populate_by_name=True, extra="forbid", frozen=True
    )

    stage: str
    version: str
    commit: str
    tag: str
    assigned_at: str


class ArtifactState(Model):
    model_config = ConfigDict(
        alias_generator=camel, populate_by_name=True, extra="forbid", frozen=True
    )

    artifact: str
    latest: str | None = None
    deprecated: bool = False
    stages: list[StageState] = []


class DeploymentState(Model):
    model_config = ConfigDict(
        alias_generator=camel, populate_by_name=True, extra="forbid", frozen=True
    )

    name: str
    artifact: str
    stage: str | None = None
    desired_version: str | None = None
    desired_commit: str | None = None
    observed_version: str | None = None
    observed_commit: str | None = None
    replicas: int | None = None
    updated_replicas: int = 0
    ready_replicas: int = 0
    rollout: Annotated[
        str, Field(description="Progressing, Complete, Held, Failed or Unknown.")
    ] = "Unknown"
    message: str = ""


class SourceState(Model):
    model_config = ConfigDict(
        alias_generator=camel, populate_by_name=True, extra="forbid", frozen=True
    )

    url: str
    branch: str
    head: str | None = None
    refs_digest: Annotated[
        str | None, Field(description="Digest of the remote's tag and branch refs.")
    ] = None
    last_poll_time: str | None = None
    last_change_time: str | None = None


class ModelRegistryStatus(Model):
    model_config = ConfigDict(
        alias_generator=camel, populate_by_name=True, extra="forbid", frozen=True
    )

    observed_generation: int | None = None
    conditions: list[Condition] = []
    source: SourceState | None = None
    registry: list[ArtifactState] = []
    deployments: list[DeploymentState] = []
    last_handled_reconcile_at: str | None = None
    summary: Annotated[str, Field(description="One line for `kubectl get`.")] = ""
