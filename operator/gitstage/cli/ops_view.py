"""What `gitstage get` prints of ModelRegistry objects: rows read from their status only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from gitstage.resources import v1alpha1 as v1

Row = list[str]


@dataclass(frozen=True)
class RegistryView:
    """A ModelRegistry object as the commands read it: metadata, a few spec fields, the status."""

    namespace: str
    name: str
    created: str | None
    suspended: bool
    url: str
    service_account: str | None
    status: v1.ModelRegistryStatus

    @classmethod
    def of(cls, body: dict[str, Any]) -> RegistryView:
        metadata, spec = body.get("metadata") or {}, body.get("spec") or {}
        try:
            status = v1.ModelRegistryStatus.model_validate(body.get("status") or {})
        except ValidationError:  # written by another version of the operator
            status = v1.ModelRegistryStatus(summary="status unreadable by this gitstage")
        return cls(
            namespace=str(metadata.get("namespace", "")),
            name=str(metadata.get("name", "")),
            created=metadata.get("creationTimestamp"),
            suspended=bool(spec.get("suspend")),
            url=str((spec.get("source") or {}).get("url", "")),
            service_account=spec.get("serviceAccountName"),
            status=status,
        )

    @property
    def ready(self) -> v1.Condition | None:
        return next((c for c in self.status.conditions if c.type == "Ready"), None)

    def summary_line(self) -> str:
        """`Ready=True Serving: churn-prod=churn#prod@v1.0.0 (Complete)`."""
        ready = self.ready
        if ready is None:
            return "no status yet (is the operator running?)"
        return f"Ready={ready.status} {ready.reason}: {ready.message}"


def registry_rows(
    items: list[RegistryView], *, wide: bool, all_namespaces: bool
) -> tuple[list[str], list[Row]]:
    headers = ["NAME", "READY", "REASON", "SUSPENDED", "AGE", "STATUS"]
    if wide:
        headers += ["URL", "HEAD", "SERVICE ACCOUNT"]
    rows = []
    for item in _sorted(items):
        ready = item.ready
        row = [
            item.name,
            ready.status if ready else "Unknown",
            ready.reason if ready else "-",
            str(item.suspended).lower(),
            age(item.created),
            item.status.summary or (ready.message if ready else "") or "-",
        ]
        if wide:
            head = (item.status.source.head if item.status.source else None) or "-"
            row += [item.url, head[:7], item.service_account or "-"]
        rows.append(row)
    return _with_namespaces(headers, rows, items, all_namespaces)


def deployment_rows(
    items: list[RegistryView], *, wide: bool, all_namespaces: bool
) -> tuple[list[str], list[Row]]:
    headers = ["REGISTRY", "DEPLOYMENT", "ARTIFACT", "STAGE", "DESIRED", "OBSERVED", "ROLLOUT"]
    if wide:
        headers += ["READY PODS", "COMMIT", "MESSAGE"]
    if all_namespaces:
        headers = ["NAMESPACE", *headers]
    rows = []
    for item in _sorted(items):
        for state in item.status.deployments:
            row = [
                item.name,
                state.name,
                state.artifact,
                state.stage or "-",
                state.desired_version or "-",
                state.observed_version or "-",
                state.rollout,
            ]
            if wide:
                wanted = "-" if state.replicas is None else str(state.replicas)
                commit = (state.observed_commit or "-")[:7]
                row += [f"{state.ready_replicas}/{wanted}", commit, state.message or "-"]
            rows.append([item.namespace, *row] if all_namespaces else row)
    return headers, rows


def age(created: str | None, now: datetime | None = None) -> str:
    """kubectl's AGE column: 42s, 5m, 3h, 12d."""
    if not created:
        return "-"
    moment = datetime.fromisoformat(created.replace("Z", "+00:00"))
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _sorted(items: list[RegistryView]) -> list[RegistryView]:
    return sorted(items, key=lambda item: (item.namespace, item.name))


def _with_namespaces(
    headers: list[str], rows: list[Row], items: list[RegistryView], all_namespaces: bool
) -> tuple[list[str], list[Row]]:
    if not all_namespaces:
        return headers, rows
    namespaces = [item.namespace for item in _sorted(items)]
    return ["NAMESPACE", *headers], [[ns, *row] for ns, row in zip(namespaces, rows, strict=True)]
