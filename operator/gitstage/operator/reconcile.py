"""One reconcile of one ModelRegistry: decide, render, apply what differs, and write status.

Runs in a worker thread (the `kubernetes` client blocks). Idempotent: with nothing new in git
and nothing changed in the cluster it makes no API write at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gitstage.adapters.git.reader import Registry
from gitstage.adapters.kube import deployments, services
from gitstage.adapters.kube.deployments import ForbiddenError, ObservedDeployment
from gitstage.adapters.kube.registries import patch_status
from gitstage.domain.policy.rules import PolicyEvaluator
from gitstage.operator.feed import SourceView
from gitstage.resources import v1alpha1 as v1
from gitstage.workloads.fetcher_transport import FetcherTransport
from gitstage.workloads.plan import Hold, Refused, decide
from gitstage.workloads.pod_policy import PodPolicy, violations
from gitstage.workloads.render import (
    ANNOTATION_DIGEST,
    Owner,
    Serving,
    SourceAccess,
    render_deployment,
)
from gitstage.workloads.service import render_service, service_url
from gitstage.workloads.status import (
    Refusal,
    condition_updates,
    merge_conditions,
    registry_table,
    rfc3339,
    rollout_state,
    summarize,
)

log = logging.getLogger(__name__)

FORBIDDEN_RETRY_SECONDS = 30.0


@dataclass(frozen=True)
class Notice:
    """A Kubernetes Event to post on the ModelRegistry."""

    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class Transition:
    """A Deployment change applied: Created, Updated, RollingOut, RolledBack or ScaledToZero."""

    deployment: str
    kind: str


@dataclass
class Outcome:
    notices: list[Notice] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    states: list[v1.DeploymentState] = field(default_factory=list)
    status_written: bool = False
    refusals: list[Refusal] = field(default_factory=list)  # for Ready
    retry_after: float | None = None  # refused by RBAC: look again later, rights may change


@dataclass(frozen=True)
class Context:
    body: dict[str, Any]
    fetcher_image: str
    requested_at: str | None = None
    as_user: str | None = None  # the impersonated ServiceAccount; None: the operator itself
    pod_policy: PodPolicy = field(default_factory=PodPolicy)
    transport: FetcherTransport | None = None  # the fetchers' CA bundle and proxy

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.body["metadata"]["namespace"])

    @property
    def generation(self) -> int | None:
        value = self.body["metadata"].get("generation")
        return int(value) if value is not None else None


@dataclass(frozen=True)
class BindingRun:
    """Everything one binding's reconcile needs, gathered once."""

    ctx: Context
    owner: Owner
    access: SourceAccess
    binding: v1.DeploymentBinding
    observed: ObservedDeployment | None
    before: v1.DeploymentState | None
    outcome: Outcome


def reconcile(ctx: Context, spec: v1.ModelRegistrySpec, source: SourceView | None) -> Outcome:
    outcome = Outcome()
    previous = _previous_status(ctx.body)
    if _before_first_poll(ctx, spec, source, previous):
        # A restarted operator has not read the repository yet: the status on record says
        # more than it could, and rewriting it would flap Ready for every registry at once.
        outcome.states = list(previous.deployments)
        return outcome
    owner = Owner(ctx.name, ctx.namespace, str(ctx.body["metadata"]["uid"]))
    access = SourceAccess(
        spec.source.url, spec.source.secret_ref.name if spec.source.secret_ref else None
    )
    registry = source.registry if source else None
    states: list[v1.DeploymentState] = []
    for binding in spec.deployments:
        observed = deployments.observe(ctx.namespace, binding.name)
        if registry is None or spec.suspend:
            states.append(_observed_only(binding, observed, spec.suspend))
            continue
        before = next((d for d in previous.deployments if d.name == binding.name), None)
        run = BindingRun(ctx, owner, access, binding, observed, before, outcome)
        policy = source.policy if source else None
        states.append(_reconcile_binding(run, spec.resolution, registry, policy))
    outcome.states = states
    status = _status(ctx, spec, source, previous, states, refusals=outcome.refusals)
    if status != _current_status(ctx.body):
        patch_status(ctx.namespace, ctx.name, status)
        outcome.status_written = True
    return outcome


def _before_first_poll(
    ctx: Context,
    spec: v1.ModelRegistrySpec,
    source: SourceView | None,
    previous: v1.ModelRegistryStatus,
) -> bool:
    """No poll has answered yet, and the status on record is of this very spec."""
    unchanged_spec = previous.observed_generation is not None and (
        previous.observed_generation == ctx.generation
    )
    return source is None and not spec.suspend and unchanged_spec


def _current_status(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in (body.get("status") or {}).items() if k in _STATUS_FIELDS}


def _previous_status(body: dict[str, Any]) -> v1.ModelRegistryStatus:
    try:
        return v1.ModelRegistryStatus.model_validate(_current_status(body))
    except ValueError:
        return v1.ModelRegistryStatus()


_STATUS_FIELDS = {f.alias or n for n, f in v1.ModelRegistryStatus.model_fields.items()}


def _reconcile_binding(
    run: BindingRun,
    resolution: v1.Resolution,
    registry: Registry,
    policy: PolicyEvaluator | None,
) -> v1.DeploymentState:
    observed = run.observed
    running = Serving.from_annotations(observed.annotations) if observed else None
    broken = violations(
        run.binding,
        run.ctx.pod_policy,
        run.ctx.fetcher_image,
        impersonating=run.ctx.as_user is not None,
    )
    if broken:
        return _pod_refused(run, broken, running)
    url = _sync_service(run)
    decision = decide(registry.state, run.binding, resolution, policy)
    if isinstance(decision, Refused):
        state = _refused(run, decision, running)
    elif isinstance(decision, Hold):
        state = _hold(run, decision, running)
    else:
        state = _serve(run, decision, running)
    return state.model_copy(update={"url": url}) if url else state


def _sync_service(run: BindingRun) -> str | None:
    """The binding's Service: applied when asked for and changed, deleted when no longer asked
    for (only one this registry owns); its URL."""
    manifest = render_service(run.owner, run.binding)
    had_one = run.before is not None and run.before.url is not None
    if manifest is None and not had_one:
        return None  # nothing to look at: no API read for bindings without a Service
    namespace, name = run.ctx.namespace, run.binding.name
    observed = services.observe(namespace, name)
    ours = observed is not None and run.owner.uid in observed.owner_uids
    if manifest is None:
        if ours:
            _apply(run, lambda: services.delete(namespace, name, run.ctx.as_user))
        return None
    if observed is not None and not ours:
        _warn_once(run, "ServiceConflict", f"{name}: a Service {name} not owned by it exists")
        return None
    if observed is None or observed.digest != _digest(manifest):
        _apply(run, lambda: services.apply(manifest, run.ctx.as_user))
    return service_url(run.binding, namespace)


def _serve(run: BindingRun, target: Serving, running: Serving | None) -> v1.DeploymentState:
    observed = run.observed
    manifest = render_deployment(
        run.owner,
        run.binding,
        target,
        run.access,
        run.ctx.fetcher_image,
        transport=run.ctx.transport,
    )
    if observed is None or observed.annotations.get(ANNOTATION_DIGEST) != _digest(manifest):
        applied = _apply_deployment(run, manifest)
        if applied is None:
            return _deployment_state(run.binding, running, observed, None).model_copy(
                update={"message": run.outcome.refusals[-1].message}
            )
        notice = _rollout_notice(run.binding, running, target)
        run.outcome.applied.append(run.binding.name)
        run.outcome.notices.append(notice)
        run.outcome.transitions.append(Transition(run.binding.name, notice.reason))
        observed = applied
    state = _deployment_state(run.binding, target, observed, None)
    if state.rollout == "Failed" and observed is not None and observed.pod_failure:
        message = f"fetch failed, the previous version keeps serving: {observed.pod_failure}"
        if run.before is None or run.before.message != message:
            run.outcome.notices.append(
                Notice("Warning", "FetchFailed", f"{run.binding.name}: {message}")
            )
        state = state.model_copy(update={"message": message})
    return state


def _refused(run: BindingRun, refused: Refused, running: Serving | None) -> v1.DeploymentState:
    """Never roll out a holder that breaks the policy: serve the newest compliant holder, or
    keep what runs when there is none; Ready=False says which tag broke which rule."""
    run.outcome.refusals.append(
        Refusal("PolicyViolation", f"{run.binding.name}: {refused.message}")
    )
    if refused.fallback is None:
        return _hold(run, refused.as_hold(), running)
    if run.before is None or run.before.message != refused.message:
        run.outcome.notices.append(
            Notice("Warning", "PolicyViolation", f"{run.binding.name}: {refused.message}")
        )
    state = _serve(run, refused.fallback, running)
    return state.model_copy(update={"message": refused.message})


def _hold(run: BindingRun, hold: Hold, running: Serving | None) -> v1.DeploymentState:
    """Keep the last version serving (or scale it to zero when asked); warn once per reason."""
    binding, observed = run.binding, run.observed
    scale_down = binding.on_empty_stage is v1.EmptyStagePolicy.SCALE_TO_ZERO
    if running is not None and observed is not None and scale_down and observed.replicas != 0:
        manifest = render_deployment(
            run.owner,
            binding,
            running,
            run.access,
            run.ctx.fetcher_image,
            scale_to_zero=True,
            transport=run.ctx.transport,
        )
        applied = _apply_deployment(run, manifest)
        if applied is not None:
            run.outcome.applied.append(binding.name)
            run.outcome.transitions.append(Transition(binding.name, "ScaledToZero"))
            observed = applied
    if run.before is None or run.before.message != hold.message:
        action = "scaled to zero" if scale_down else "keeps serving the last version"
        run.outcome.notices.append(
            Notice("Warning", hold.reason.value, f"{binding.name}: {hold.message}; {action}")
        )
    return _deployment_state(binding, running, observed, hold)


def _apply_deployment(run: BindingRun, manifest: dict[str, Any]) -> ObservedDeployment | None:
    """The Deployment as the API server answered the apply, or None when it was refused."""
    try:
        return deployments.apply(manifest, run.ctx.as_user)
    except ForbiddenError as error:
        _forbidden(run, error)
        return None


def _apply(run: BindingRun, write: Callable[[], None]) -> bool:
    """A write as the registry's ServiceAccount; False (and a Forbidden refusal) when its RBAC
    does not allow it: the tenant gets no right through the operator."""
    try:
        write()
    except ForbiddenError as error:
        _forbidden(run, error)
        return False
    return True


def _forbidden(run: BindingRun, error: ForbiddenError) -> None:
    message = f"{run.binding.name}: forbidden: {error}"
    _warn_once(run, "Forbidden", message)
    run.outcome.refusals.append(Refusal("Forbidden", message))
    run.outcome.retry_after = FORBIDDEN_RETRY_SECONDS


def _pod_refused(run: BindingRun, broken: list[str], running: Serving | None) -> v1.DeploymentState:
    """A pod the operator's pod policy forbids is never applied; what runs keeps running."""
    message = f"{run.binding.name}: pod policy: {'; '.join(broken)}"
    _warn_once(run, "PodPolicyViolation", message)
    run.outcome.refusals.append(Refusal("PodPolicyViolation", message))
    state = _deployment_state(run.binding, running, run.observed, None)
    return state.model_copy(update={"message": message})


def _warn_once(run: BindingRun, reason: str, message: str) -> None:
    if run.before is None or run.before.message != message:
        run.outcome.notices.append(Notice("Warning", reason, message))


def _digest(manifest: dict[str, Any]) -> str:
    return str(manifest["metadata"]["annotations"][ANNOTATION_DIGEST])


def _rollout_notice(
    binding: v1.DeploymentBinding, running: Serving | None, target: Serving
) -> Notice:
    where = f"{target.artifact}#{target.stage}" if target.stage else target.artifact
    if running is None:
        return Notice("Normal", "Created", f"{binding.name}: serving {where} {target.version}")
    if (running.version, running.commit) == (target.version, target.commit):
        return Notice("Normal", "Updated", f"{binding.name}: updated {where} {target.version}")
    back = (
        running.assigned_at is not None
        and target.assigned_at is not None
        and _instant(target.assigned_at) < _instant(running.assigned_at)
    )
    reason, verb = ("RolledBack", "rolling back") if back else ("RollingOut", "rolling out")
    return Notice(
        "Normal",
        reason,
        f"{binding.name}: {verb} {where} from {running.version} to {target.version} "
        f"(commit {target.commit[:7]}, tag {target.tag})",
    )


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _deployment_state(
    binding: v1.DeploymentBinding,
    desired: Serving | None,
    observed: ObservedDeployment | None,
    hold: Hold | None,
) -> v1.DeploymentState:
    running = Serving.from_annotations(observed.template_annotations) if observed else None
    return v1.DeploymentState(
        name=binding.name,
        artifact=binding.artifact,
        stage=binding.stage,
        desired_version=desired.version if desired else None,
        desired_commit=desired.commit if desired else None,
        observed_version=running.version if running else None,
        observed_commit=running.commit if running else None,
        replicas=observed.replicas if observed else None,
        updated_replicas=observed.updated_replicas if observed else 0,
        ready_replicas=observed.ready_replicas if observed else 0,
        rollout=rollout_state(desired, observed, running, hold),
        message=hold.message if hold else "",
    )


def _observed_only(
    binding: v1.DeploymentBinding, observed: ObservedDeployment | None, suspended: bool
) -> v1.DeploymentState:
    running = Serving.from_annotations(observed.annotations) if observed else None
    state = _deployment_state(binding, running, observed, None)
    return state.model_copy(update={"message": "suspended" if suspended else "waiting for source"})


def _status(
    ctx: Context,
    spec: v1.ModelRegistrySpec,
    source: SourceView | None,
    previous: v1.ModelRegistryStatus,
    states: list[v1.DeploymentState],
    *,
    refusals: list[Refusal],
) -> dict[str, Any]:
    now = rfc3339(datetime.now(UTC))
    conditions = merge_conditions(
        previous.conditions, condition_updates(spec, source, states, refusals), ctx.generation, now
    )
    registry = source.registry if source else None
    status = v1.ModelRegistryStatus(
        observed_generation=ctx.generation,
        conditions=conditions,
        source=v1.SourceState(
            url=spec.source.url,
            branch=spec.source.branch,
            head=source.head if source else None,
            refs_digest=source.digest if source else None,
            last_change_time=source.changed_at if source else None,
        ),
        registry=registry_table(registry.state, spec.resolution) if registry else previous.registry,
        deployments=states,
        last_handled_reconcile_at=ctx.requested_at or previous.last_handled_reconcile_at,
        summary=summarize(states),
    )
    return status.model_dump(by_alias=True, exclude_none=True, mode="json")
