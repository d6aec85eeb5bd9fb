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
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# Names the rendered pod uses for its own (workloads/render.py; a test checks they agree).
RESERVED_CONTAINER = "gitstage-fetch"
RESERVED_VOLUMES = ("gitstage-model", "gitstage-tmp", "gitstage-ca")
FETCHER_SCRATCH = "/tmp"  # noqa: S108 - the fetcher's own mount, never the model's
INTERVAL_FLOOR, INTERVAL_CEILING = "1s", "24h"
# An absolute path of plain segments: no `.`/`..` (a dot inside a name is fine), no trailing /.
MODEL_PATH_PATTERN = r"^(/[A-Za-z0-9_.-]*[A-Za-z0-9_-][A-Za-z0-9_.-]*)+$"
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
        Field(
            min_length=1,
            max_length=253,
            pattern=DNS_SUBDOMAIN_PATTERN,
            description="Name of a Secret in the same namespace.",
        ),
    ]


# `scheme://user:password@host`: the fetcher's pods would carry the password in their spec.
CREDENTIALS_IN_URL = "^[a-zA-Z][a-zA-Z0-9+.-]*://[^/@]*:[^/@]*@"
NO_CREDENTIALS_IN_URL = f"!self.url.matches('{CREDENTIALS_IN_URL}')"
URL_CREDENTIALS_MESSAGE = (
    "spec.source.url must not hold a password (it would reach every pod's spec);"
    " put the credentials in the Secret named by spec.source.secretRef"
)


INTERVAL_RULE = (
    f"duration(self.interval) >= duration('{INTERVAL_FLOOR}')"
    f" && duration(self.interval) <= duration('{INTERVAL_CEILING}')"
)
INTERVAL_MESSAGE = f"spec.source.interval must be between {INTERVAL_FLOOR} and {INTERVAL_CEILING}"
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(text: str) -> float:
    """A Go duration as DURATION_PATTERN admits it (`1m30s`, `500ms`), in seconds."""
    return sum(float(number) * _SECONDS[unit] for number, unit in _DURATION_PART.findall(text))


class GitSource(Model):
    """Where the registry lives and how often to look at it."""

    model_config = ConfigDict(
        alias_generator=camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": NO_CREDENTIALS_IN_URL, "message": URL_CREDENTIALS_MESSAGE},
                {"rule": INTERVAL_RULE, "message": INTERVAL_MESSAGE},
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

    @field_validator("interval")
    @classmethod
    def _interval_bounds(cls, interval: str) -> str:
        seconds = duration_seconds(interval)
        if not duration_seconds(INTERVAL_FLOOR) <= seconds <= duration_seconds(INTERVAL_CEILING):
            raise ValueError(INTERVAL_MESSAGE)
        return interval

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


QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$"


class ServiceType(StrEnum):
    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"
    LOAD_BALANCER = "LoadBalancer"


class ModelService(Model):
    """A Service in front of the binding's pods, named like the Deployment; its ports are the
    serving containers' ports (their names and numbers)."""

    model_config = ConfigDict(
        alias_generator=camel, populate_by_name=True, extra="forbid", frozen=True
    )

    type: Annotated[ServiceType, Field(default=ServiceType.CLUSTER_IP, description="Service type.")]
    annotations: Annotated[
        dict[str, str],
        Field(default_factory=dict, description="Annotations of the Service (a load balancer's)."),
    ]


class ModelVolume(Model):
    """The emptyDir the model is fetched into (one per pod)."""

    model_config = ConfigDict(
        alias_generator=camel, populate_by_name=True, extra="forbid", frozen=True
    )

    size_limit: Annotated[
        str | None,
        Field(default=None, pattern=QUANTITY_PATTERN, description="emptyDir sizeLimit, e.g. 20Gi."),
    ]
    medium: Annotated[
        str | None,
        Field(default=None, pattern="^(Memory)?$", description='"Memory" for a tmpfs.'),
    ]


class ModelCache(Model):
    """A PersistentVolumeClaim shared by the pods: the model is fetched once per commit into
    `gitstage/<commit>/<artifact>` on it, and pods of that commit mount it read-only, so scaling
    out downloads nothing. Needs a ReadWriteMany volume whose filesystem supports flock."""

    model_config = ConfigDict(
        alias_generator=camel, populate_by_name=True, extra="forbid", frozen=True
    )

    claim_name: Annotated[
        str,
        Field(
            min_length=1,
            max_length=253,
            pattern=DNS_SUBDOMAIN_PATTERN,
            description="PersistentVolumeClaim of the same namespace.",
        ),
    ]


class Fetcher(Model):
    """The init container that materializes the model before the serving containers start."""

    model_config = ConfigDict(
        alias_generator=camel, populate_by_name=True, extra="forbid", frozen=True
    )

    image: Annotated[
        str | None,
        Field(
            default=None,
            min_length=1,
            description="Fetcher image; defaults to the operator's own image.",
        ),
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


MAX_POD_ITEMS = 64
RESERVED_MESSAGE = (
    f"the container name {RESERVED_CONTAINER} and the volume names"
    f" {', '.join(RESERVED_VOLUMES)} are gitstage's own"
)
NO_RESERVED_CONTAINER = " && ".join(
    f"(!has(self.{key}) || self.{key}.all(c, !has(c.name) || c.name != '{RESERVED_CONTAINER}'))"
    for key in ("containers", "initContainers")
)
NO_RESERVED_VOLUME = (
    "!has(self.volumes) || self.volumes.all(v, !has(v.name) || !(v.name in"
    f" {list(RESERVED_VOLUMES)}))"
)


def _named_items(min_items: int = 0) -> dict[str, Any]:
    """An array of objects with an optional `name` (typed, so CEL can read it; bounded, so
    CEL's cost estimate is)."""
    schema: dict[str, Any] = {
        "type": "array",
        "maxItems": MAX_POD_ITEMS,
        "items": {
            "type": "object",
            "properties": {"name": {"type": "string", "maxLength": 253}},
            "x-kubernetes-preserve-unknown-fields": True,
        },
    }
    if min_items:
        schema["minItems"] = min_items
    return schema


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
                    "containers": _named_items(min_items=1),
                    "initContainers": _named_items(),
                    "volumes": _named_items(),
                },
                "x-kubernetes-preserve-unknown-fields": True,
                "x-kubernetes-validations": [
                    {"rule": NO_RESERVED_CONTAINER, "message": RESERVED_MESSAGE},
                    {"rule": NO_RESERVED_VOLUME, "message": RESERVED_MESSAGE},
                ],
            },
        ),
    ]

    @field_validator("spec")
    @classmethod
    def _has_containers(cls, spec: dict[str, Any]) -> dict[str, Any]:
        containers = spec.get("containers")
        if not isinstance(containers, list) or not containers:
            raise ValueError("template.spec.containers needs at least one container")
        for key in ("containers", "initContainers", "volumes"):
            items = spec.get(key) or []
            if not isinstance(items, list) or len(items) > MAX_POD_ITEMS:
                raise ValueError(f"template.spec.{key} must be a list of at most {MAX_POD_ITEMS}")
        names = [
            c.get("name") for key in ("containers", "initContainers") for c in spec.get(key) or []
        ]
        volumes = [v.get("name") for v in spec.get("volumes") or []]
        if RESERVED_CONTAINER in names or set(RESERVED_VOLUMES) & set(volumes):
            raise ValueError(RESERVED_MESSAGE)
        return spec


ONE_OF_STAGE_OR_VERSION = "has(self.stage) != has(self.version)"
MODEL_PATH_RULE = (
    f"!has(self.modelPath) || (self.modelPath != '{FETCHER_SCRATCH}'"
    f" && !self.modelPath.startsWith('{FETCHER_SCRATCH}/'))"
)
MODEL_PATH_MESSAGE = f"modelPath must not be {FETCHER_SCRATCH} or below it (the fetcher's own)"


def _model_path_is_free(path: str) -> bool:
    return path != FETCHER_SCRATCH and not path.startswith(FETCHER_SCRATCH + "/")


class DeploymentBinding(Model):
    """One Deployment serving one artifact at a stage (or a pinned version)."""

    model_config = ConfigDict(
        alias_generator=camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": ONE_OF_STAGE_OR_VERSION, "message": "set exactly one of stage or version"},
                {"rule": MODEL_PATH_RULE, "message": MODEL_PATH_MESSAGE},
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
            strict=True,
            description="Replicas; leave unset to let an HPA or kubectl scale own the field.",
        ),
    ]
    model_path: Annotated[
        str,
        Field(
            default="/mnt/models",
            pattern=MODEL_PATH_PATTERN,
            max_length=1024,
            description="Where the model is mounted (read-only) in the serving containers.",
        ),
    ]
    template: PodTemplate
    fetcher: Annotated[Fetcher, Field(default_factory=Fetcher)]
    service: Annotated[
        ModelService | None,
        Field(default=None, description="A Service in front of the pods; its URL is in status."),
    ]
    strategy: Annotated[
        dict[str, Any] | None,
        Field(default=None, description="The Deployment's strategy (RollingUpdate or Recreate)."),
    ]
    progress_deadline_seconds: Annotated[
        int | None,
        Field(
            default=None,
            ge=1,
            strict=True,
            description=(
                "Seconds a rollout may take before it is Failed (Kubernetes' default: 600; a "
                "long model download may need more)."
            ),
        ),
    ]
    revision_history_limit: Annotated[
        int | None,
        Field(default=None, ge=0, strict=True, description="Old ReplicaSets kept for rollback."),
    ]
    model_volume: Annotated[
        ModelVolume,
        Field(default_factory=ModelVolume, description="The per-pod emptyDir of the model."),
    ]
    model_cache: Annotated[
        ModelCache | None,
        Field(default=None, description="A shared volume instead: fetched once per commit."),
    ]
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
        if not _model_path_is_free(self.model_path):
            raise ValueError(MODEL_PATH_MESSAGE)
        return self


class ModelRegistrySpec(Model):
    model_config = ConfigDict(
        alias_generator=camel, populate_by_name=True, extra="forbid", frozen=True
    )

    @field_validator("deployments")
    @classmethod
    def _unique_names(cls, deployments: list[DeploymentBinding]) -> list[DeploymentBinding]:
        names = [binding.name for binding in deployments]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"deployment names must be unique: {', '.join(repeated)} repeated")
        return deployments

    source: GitSource
    service_account_name: Annotated[
        str | None,
        Field(
            default=None,
            min_length=1,
            max_length=253,
            pattern=DNS_SUBDOMAIN_PATTERN,
            description=(
                "ServiceAccount of this namespace that the operator impersonates to read "
                "spec.source.secretRef and to apply the Deployments: the registry gets no right "
                "that account lacks. Unset: the operator's --default-service-account, else the "
                "operator's own identity (refused with --require-service-account)."
            ),
        ),
    ]
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
    url: Annotated[str | None, Field(description="The model's Service URL inside the cluster.")] = (
        None
    )


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
