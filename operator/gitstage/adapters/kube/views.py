"""What the operator reads of Deployments, pods, Services, Secrets and Leases: typed views
parsed straight from the API server's JSON, every other field skipped.

The kubernetes client's own models build an object per field of every response (a
Deployment's managedFields included), in Python, in the thread that asked: during a thousand
registries' rollout each reconcile read its Deployment and often its pods that way. Parsing
the bytes into these views is done by pydantic-core, which skips what they do not name.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class _View(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class ObjectMeta(_View):
    name: str = ""
    generation: int = 0
    annotations: dict[str, str] = Field(default_factory=dict)


class LabelSelector(_View):
    match_labels: dict[str, str] = Field(default_factory=dict, alias="matchLabels")


class PodTemplate(_View):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)


class DeploymentSpec(_View):
    replicas: int | None = None
    selector: LabelSelector = Field(default_factory=LabelSelector)
    template: PodTemplate = Field(default_factory=PodTemplate)


class Condition(_View):
    type: str
    reason: str | None = None


class DeploymentStatus(_View):
    observed_generation: int = Field(0, alias="observedGeneration")
    replicas: int = 0
    updated_replicas: int = Field(0, alias="updatedReplicas")
    ready_replicas: int = Field(0, alias="readyReplicas")
    available_replicas: int = Field(0, alias="availableReplicas")
    unavailable_replicas: int = Field(0, alias="unavailableReplicas")
    conditions: list[Condition] = Field(default_factory=list)


class Deployment(_View):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: DeploymentSpec = Field(default_factory=DeploymentSpec)
    status: DeploymentStatus = Field(default_factory=DeploymentStatus)


class Terminated(_View):
    exit_code: int = Field(0, alias="exitCode")
    reason: str | None = None
    message: str | None = None


class Waiting(_View):
    reason: str | None = None
    message: str | None = None


class Running(_View):
    started_at: str | None = Field(None, alias="startedAt")


class ContainerState(_View):
    running: Running | None = None
    terminated: Terminated | None = None
    waiting: Waiting | None = None


class ContainerStatus(_View):
    name: str
    state: ContainerState | None = None
    last_state: ContainerState | None = Field(None, alias="lastState")
    restart_count: int = Field(0, alias="restartCount")


class PodStatus(_View):
    init_container_statuses: list[ContainerStatus] = Field(
        default_factory=list, alias="initContainerStatuses"
    )


class Pod(_View):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    status: PodStatus | None = None


class PodList(_View):
    items: list[Pod] = Field(default_factory=list)


class OwnerReference(_View):
    uid: str


class ServiceMeta(ObjectMeta):
    # Only a Service's owners are looked at: a pod list's would be parsed for nothing.
    owner_references: list[OwnerReference] = Field(default_factory=list, alias="ownerReferences")


class Service(_View):
    metadata: ServiceMeta = Field(default_factory=ServiceMeta)


class Secret(_View):
    data: dict[str, str] | None = None  # base64 values


class LeaseSpec(_View):
    holder_identity: str | None = Field(None, alias="holderIdentity")
    lease_duration_seconds: int | None = Field(None, alias="leaseDurationSeconds")
    acquire_time: datetime | None = Field(None, alias="acquireTime")
    renew_time: datetime | None = Field(None, alias="renewTime")
    lease_transitions: int | None = Field(None, alias="leaseTransitions")


class Lease(_View):
    spec: LeaseSpec | None = None  # the object itself is kept as JSON for the update
