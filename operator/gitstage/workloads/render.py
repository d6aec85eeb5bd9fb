"""Render the Deployment that serves a binding's version: a pure, byte-stable function.

The same inputs always give the same manifest (no timestamps, fixed key order), so restarting
or upgrading the operator never restarts pods. Pods are pinned to the commit SHA.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from gitstage.resources import v1alpha1 as v1
from gitstage.workloads.fetcher_transport import FetcherTransport, add_transport
from gitstage.workloads.labels import label_value

Manifest = dict[str, Any]

MANAGED_BY = "gitstage"
MODEL_VOLUME = "gitstage-model"
TMP_VOLUME = "gitstage-tmp"
# The fetcher runs with a read-only root filesystem: git needs a writable HOME and temp dir.
SCRATCH_DIR = "/tmp"  # noqa: S108 - an emptyDir private to the init container
FETCHER_NAME = "gitstage-fetch"

LABEL_REGISTRY = f"{v1.GROUP}/registry"
LABEL_BINDING = f"{v1.GROUP}/deployment"
LABEL_ARTIFACT = f"{v1.GROUP}/artifact"
LABEL_STAGE = f"{v1.GROUP}/stage"
LABEL_VERSION = f"{v1.GROUP}/version"
ANNOTATION_ARTIFACT = f"{v1.GROUP}/artifact"
ANNOTATION_STAGE = f"{v1.GROUP}/stage"
ANNOTATION_VERSION = f"{v1.GROUP}/version"
ANNOTATION_COMMIT = f"{v1.GROUP}/commit"
ANNOTATION_TAG = f"{v1.GROUP}/tag"
ANNOTATION_ASSIGNED_AT = f"{v1.GROUP}/assigned-at"
ANNOTATION_DIGEST = f"{v1.GROUP}/rendered-digest"


@dataclass(frozen=True)
class Owner:
    """The ModelRegistry that owns the Deployment (deleting it deletes them)."""

    name: str
    namespace: str
    uid: str


@dataclass(frozen=True)
class Serving:
    """What runs: the artifact at a version and commit, reached through a stage or a pin."""

    artifact: str
    version: str
    commit: str
    stage: str | None
    tag: str | None
    assigned_at: str | None

    @classmethod
    def from_annotations(cls, annotations: dict[str, str]) -> Serving | None:
        """What a Deployment rendered by gitstage serves, read back from its annotations."""
        try:
            return cls(
                artifact=annotations[ANNOTATION_ARTIFACT],
                version=annotations[ANNOTATION_VERSION],
                commit=annotations[ANNOTATION_COMMIT],
                stage=annotations.get(ANNOTATION_STAGE),
                tag=annotations.get(ANNOTATION_TAG),
                assigned_at=annotations.get(ANNOTATION_ASSIGNED_AT),
            )
        except KeyError:
            return None


@dataclass(frozen=True)
class SourceAccess:
    url: str
    secret_name: str | None


def render_deployment(
    owner: Owner,
    binding: v1.DeploymentBinding,
    serving: Serving,
    source: SourceAccess,
    default_fetcher_image: str,
    *,
    scale_to_zero: bool = False,
    transport: FetcherTransport | None = None,
) -> Manifest:
    selector = {LABEL_REGISTRY: label_value(owner.name), LABEL_BINDING: binding.name}
    identity = {**selector, **_serving_labels(serving)}
    metadata: Manifest = {
        "name": binding.name,
        "namespace": owner.namespace,
        "labels": {"app.kubernetes.io/managed-by": MANAGED_BY, **identity},
        "annotations": _deployment_annotations(serving),
        "ownerReferences": [owner_reference(owner)],
    }
    spec: Manifest = {"selector": {"matchLabels": selector}}
    if scale_to_zero:
        spec["replicas"] = 0
    elif binding.replicas is not None:
        spec["replicas"] = binding.replicas
    spec.update(_deployment_settings(binding))
    spec["template"] = _pod_template(binding, serving, source, identity, default_fetcher_image)
    if transport is not None:
        add_transport(spec["template"]["spec"], FETCHER_NAME, transport)
    manifest = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": spec}
    metadata["annotations"][ANNOTATION_DIGEST] = manifest_digest(manifest)
    return manifest


def owner_reference(owner: Owner) -> Manifest:
    """Deleting the ModelRegistry deletes what it owns (the garbage collector does)."""
    return {
        "apiVersion": f"{v1.GROUP}/{v1.VERSION}",
        "kind": v1.KIND,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _deployment_settings(binding: v1.DeploymentBinding) -> Manifest:
    """Only the settings the binding sets: an unset one stays out, so the manifest (and its
    digest) of a binding that sets none is what it always was."""
    settings: Manifest = {}
    if binding.strategy is not None:
        settings["strategy"] = copy.deepcopy(binding.strategy)
    if binding.progress_deadline_seconds is not None:
        settings["progressDeadlineSeconds"] = binding.progress_deadline_seconds
    if binding.revision_history_limit is not None:
        settings["revisionHistoryLimit"] = binding.revision_history_limit
    return settings


def model_cache_path(serving: Serving) -> str:
    """Where a commit's artifact lives on a shared model cache volume (one directory each)."""
    return f"gitstage/{serving.commit}/{label_value(serving.artifact)}"


def _model_volume(binding: v1.DeploymentBinding) -> Manifest:
    if binding.model_cache is not None:
        claim = {"claimName": binding.model_cache.claim_name}
        return {"name": MODEL_VOLUME, "persistentVolumeClaim": claim}
    empty_dir = binding.model_volume.model_dump(by_alias=True, exclude_none=True)
    return {"name": MODEL_VOLUME, "emptyDir": empty_dir}


def manifest_digest(manifest: Manifest) -> str:
    """A digest of what gitstage applies: equal digests mean there is nothing to apply."""
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _serving_labels(serving: Serving) -> dict[str, str]:
    labels = {
        LABEL_ARTIFACT: label_value(serving.artifact),
        LABEL_VERSION: label_value(serving.version),
    }
    if serving.stage is not None:
        labels[LABEL_STAGE] = label_value(serving.stage)
    return labels


def _serving_annotations(serving: Serving) -> dict[str, str]:
    """On pods: what runs. Tags stay off pods so re-assigning a version restarts nothing."""
    annotations = {
        ANNOTATION_ARTIFACT: serving.artifact,
        ANNOTATION_VERSION: serving.version,
        ANNOTATION_COMMIT: serving.commit,
    }
    if serving.stage is not None:
        annotations[ANNOTATION_STAGE] = serving.stage
    return annotations


def _deployment_annotations(serving: Serving) -> dict[str, str]:
    annotations = _serving_annotations(serving)
    if serving.tag is not None:
        annotations[ANNOTATION_TAG] = serving.tag
    if serving.assigned_at is not None:
        annotations[ANNOTATION_ASSIGNED_AT] = serving.assigned_at
    return annotations


def _pod_template(
    binding: v1.DeploymentBinding,
    serving: Serving,
    source: SourceAccess,
    identity: dict[str, str],
    default_image: str,
) -> Manifest:
    user_meta = copy.deepcopy(binding.template.metadata)
    pod_spec = copy.deepcopy(binding.template.spec)
    labels = {**user_meta.get("labels", {}), **identity}
    annotations = {**user_meta.get("annotations", {}), **_serving_annotations(serving)}
    mount = {"name": MODEL_VOLUME, "mountPath": binding.model_path, "readOnly": True}
    if binding.model_cache is not None:
        mount["subPath"] = model_cache_path(serving)
    pod_spec["containers"] = [
        {**c, "volumeMounts": [*c.get("volumeMounts", []), mount]} for c in pod_spec["containers"]
    ]
    fetcher = _fetcher(binding, serving, source, default_image)
    pod_spec["initContainers"] = [fetcher, *pod_spec.get("initContainers", [])]
    pod_spec["volumes"] = [
        *pod_spec.get("volumes", []),
        _model_volume(binding),
        {"name": TMP_VOLUME, "emptyDir": {}},
    ]
    return {"metadata": {"labels": labels, "annotations": annotations}, "spec": pod_spec}


def _fetcher(
    binding: v1.DeploymentBinding, serving: Serving, source: SourceAccess, default_image: str
) -> Manifest:
    env = [
        {"name": "GITSTAGE_FETCH_REPO", "value": source.url},
        {"name": "GITSTAGE_FETCH_REV", "value": serving.commit},
        {"name": "GITSTAGE_FETCH_ARTIFACT", "value": serving.artifact},
        {"name": "GITSTAGE_FETCH_VERSION", "value": serving.version},
        {"name": "GITSTAGE_FETCH_DEST", "value": _fetch_destination(binding, serving)},
        {"name": "HOME", "value": SCRATCH_DIR},
    ]
    if serving.stage is not None:
        env.append({"name": "GITSTAGE_FETCH_STAGE", "value": serving.stage})
    if source.secret_name is not None:
        env += _git_credentials_env(source.secret_name, ssh=is_ssh_url(source.url))
    container: Manifest = {
        "name": FETCHER_NAME,
        "image": binding.fetcher.image or default_image,
        "args": ["fetch"],
        "env": env,
        "volumeMounts": [
            {"name": MODEL_VOLUME, "mountPath": binding.model_path},
            {"name": TMP_VOLUME, "mountPath": SCRATCH_DIR},
        ],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if binding.fetcher.secret_ref is not None:
        container["envFrom"] = [{"secretRef": {"name": binding.fetcher.secret_ref.name}}]
    if binding.fetcher.resources is not None:
        container["resources"] = copy.deepcopy(binding.fetcher.resources)
    return container


def _fetch_destination(binding: v1.DeploymentBinding, serving: Serving) -> str:
    if binding.model_cache is None:
        return binding.model_path
    return f"{binding.model_path}/{model_cache_path(serving)}"


def is_ssh_url(url: str) -> bool:
    """`ssh://...` or scp-like `user@host:path`; anything else is HTTP(S) or a path."""
    if "://" in url:
        return url.startswith(("ssh://", "git+ssh://", "ssh+git://"))
    head = url.split("/", 1)[0]
    return ":" in head


def _git_credentials_env(secret: str, *, ssh: bool) -> list[Manifest]:
    """The source Secret's keys, optional each, as the fetcher's git credential variables.

    Only the keys of the URL's transport, so HTTPS manifests stay as they were before SSH.
    """
    keys = [
        ("GITSTAGE_GIT_USERNAME", "username"),
        ("GITSTAGE_GIT_PASSWORD", "password"),
        ("GITSTAGE_GIT_BEARER_TOKEN", "bearerToken"),
    ]
    if ssh:
        keys = [("GITSTAGE_GIT_SSH_KEY", "identity"), ("GITSTAGE_GIT_KNOWN_HOSTS", "known_hosts")]
    return [
        {
            "name": variable,
            "valueFrom": {"secretKeyRef": {"name": secret, "key": key, "optional": True}},
        }
        for variable, key in keys
    ]
