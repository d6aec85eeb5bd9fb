"""One asyncio worker per ModelRegistry: it waits for news (git, spec, Deployments), reconciles.

All wake-ups coalesce: a burst of Deployment events or pushes ends in one reconcile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, Protocol, cast

import kopf
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from gitstage.adapters.git.credentials import GitCredentials
from gitstage.adapters.kube import registries
from gitstage.adapters.kube.client import service_account_user
from gitstage.dashboard.inputs import PostedEvent
from gitstage.operator import observability
from gitstage.operator.feed import Follow, SourceView
from gitstage.operator.leader import Leadership
from gitstage.operator.reconcile import Context, Outcome, reconcile
from gitstage.operator.settings import OperatorSettings
from gitstage.resources import v1alpha1 as v1
from gitstage.workloads.status import rfc3339

log = logging.getLogger(__name__)

REQUESTED_AT = f"{v1.GROUP}/requestedAt"
FLUX_REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
RETRY_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
FORBIDDEN_RETRY_SECONDS = 30.0  # RBAC refusals: rights may be granted without any event here
ACCOUNT_REQUIRED = (
    "spec.serviceAccountName is required: the operator runs with --require-service-account"
    " and acts for a ModelRegistry only as a ServiceAccount of its namespace"
)
POSTED_KEPT = 20  # the newest Events posted per ModelRegistry, for the dashboard


def credentials_from_secret(data: dict[str, str]) -> GitCredentials:
    """The keys Flux's GitRepository reads: username/password, bearerToken, identity."""
    return GitCredentials(
        data.get("username"),
        data.get("password"),
        data.get("bearerToken"),
        data.get("identity"),
        data.get("known_hosts"),
    )


class Feed(Protocol):
    """Shared pollers: one per repository and credentials, fanned out to every follower."""

    def follow(
        self, key: str, follow: Follow, on_update: Callable[[SourceView], Coroutine[Any, Any, None]]
    ) -> None: ...

    def unfollow(self, key: str) -> None: ...

    def request(self, key: str) -> None: ...


def requested_at(body: dict[str, Any]) -> str | None:
    annotations = body.get("metadata", {}).get("annotations") or {}
    value = annotations.get(REQUESTED_AT) or annotations.get(FLUX_REQUESTED_AT)
    return str(value) if value is not None else None


class RegistryWorker:
    def __init__(
        self,
        namespace: str,
        name: str,
        feed: Feed,
        settings: OperatorSettings,
        leadership: Leadership | None = None,
    ) -> None:
        self.namespace = namespace
        self._leadership = leadership or Leadership()
        self.name = name
        self.key = f"{namespace}/{name}"
        self._feed = feed
        self._settings = settings
        self._wakeup = asyncio.Event()
        self.stopping = False
        self._source: SourceView | None = None
        self._follow: Follow | None = None
        self._failures = 0
        self.reconciles = 0
        self.handled_request: str | None = None
        self._generation: object = None  # the last metadata.generation its events carried
        # What the dashboard reads (in memory only): the last valid spec, the Deployments'
        # states, the Events posted; `revision` moves whenever one of them (or the source) does.
        self.spec: v1.ModelRegistrySpec | None = None
        self.states: tuple[v1.DeploymentState, ...] = ()
        self.posted: deque[PostedEvent] = deque(maxlen=POSTED_KEPT)
        self.revision = 0

    @property
    def source(self) -> SourceView | None:
        return self._source

    def wake(self) -> None:
        self._wakeup.set()

    def generation_moved(self, generation: object) -> bool:
        """Record an event's generation: whether the spec changed since the last event (the
        first event is no change: a new worker reconciles anyway)."""
        moved = self._generation is not None and generation != self._generation
        self._generation = generation
        return moved

    def request(self) -> None:
        """`requestedAt`: poll the repository now, then reconcile."""
        if self._follow is not None:
            self._feed.request(self.key)
        self.wake()

    async def on_update(self, view: SourceView) -> None:
        self._source = view
        self.revision += 1
        self.wake()

    def stop(self) -> None:
        """The ModelRegistry is gone (or the operator stops): end `run` after this reconcile."""
        self.stopping = True
        self._wakeup.set()

    async def run(self) -> None:
        try:
            while not self.stopping:
                self._wakeup.clear()
                delay = await self._reconcile_safely()
                if not self.stopping:
                    await self._sleep(delay)
        finally:
            self._feed.unfollow(self.key)
            observability.forget(self.namespace, self.name)

    async def _sleep(self, delay: float | None) -> None:
        """Until a wake-up (news, a request, `stop`), or the retry delay. No timer runs while a
        worker waits for news: a thousand idle workers cost nothing."""
        if delay is None:
            await self._wakeup.wait()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout=max(delay, 0.0))

    async def _reconcile_safely(self) -> float | None:
        """One reconcile; on any failure the seconds until the retry (backing off). No error
        ends the worker: its registry would never be reconciled again."""
        try:
            with observability.reconciling(self.namespace, self.name):
                retry_after = await self._reconcile()
        except ApiException as error:
            delay = self._backoff()
            log.warning(
                "%s: API error %s %s; retrying in %.0fs",
                self.key,
                error.status,
                error.reason,
                delay,
            )
            return delay
        except Exception as error:  # a bug or an answer no view can parse: retried as well
            first = self._failures == 0  # the traceback once per streak of failures
            delay = self._backoff()
            message = " ".join(str(error).split())[:300]
            log.error(
                "%s: reconcile failed: %s: %s; retrying in %.0fs",
                self.key,
                type(error).__name__,
                message,
                delay,
                exc_info=first,
            )
            return delay
        self._failures = 0
        return retry_after

    def _backoff(self) -> float:
        delay = RETRY_DELAYS[min(self._failures, len(RETRY_DELAYS) - 1)]
        self._failures += 1
        return delay

    async def _reconcile(self) -> float | None:
        """One reconcile; the seconds after which to look again unasked (None: on news only)."""
        body = await asyncio.to_thread(registries.read_registry, self.namespace, self.name)
        if body is None:
            return None
        try:
            spec = v1.ModelRegistrySpec.model_validate(body.get("spec") or {})
        except ValidationError as error:
            if self._leadership.leader:
                await self._invalid_spec(body, error)
            return None
        tenancy = self._settings.tenancy
        account = tenancy.account_for(spec.service_account_name)
        if account is None and tenancy.require_service_account:
            if self._leadership.leader:
                await self._stalled(body, "ServiceAccountRequired", ACCOUNT_REQUIRED)
            self._unfollow()
            return None
        as_user = service_account_user(self.namespace, account) if account else None
        await self._follow_source(spec, as_user)
        if not self._leadership.leader:
            return None  # a standby keeps the mirror warm and writes nothing
        ctx = Context(
            body=body,
            fetcher_image=self._settings.fetcher_image,
            requested_at=requested_at(body),
            as_user=as_user,
            pod_policy=self._settings.pod_policy,
            transport=self._settings.fetcher_transport,
        )
        outcome = await asyncio.to_thread(reconcile, ctx, spec, self._source)
        self.reconciles += 1
        self._remember(spec, outcome)
        observability.record_reconcile(self.namespace, self.name, outcome)
        self._post(body, outcome)
        forbidden = self._source is not None and self._source.error_reason == "SecretForbidden"
        return FORBIDDEN_RETRY_SECONDS if forbidden else outcome.retry_after

    def _unfollow(self) -> None:
        self._feed.unfollow(self.key)
        self._follow = None

    def _remember(self, spec: v1.ModelRegistrySpec, outcome: Outcome) -> None:
        states = tuple(outcome.states)
        if spec != self.spec or states != self.states:
            self.spec, self.states = spec, states
            self.revision += 1

    def _record(self, type_: str, reason: str, message: str) -> None:
        self.posted.append(PostedEvent(datetime.now(UTC), type_, reason, message))
        self.revision += 1

    async def _follow_source(self, spec: v1.ModelRegistrySpec, as_user: str | None) -> None:
        if spec.suspend:
            self._unfollow()
            return
        source = spec.source
        credentials = await self._credentials(source, as_user)
        if self._source is not None and self._source.error_reason == "SecretForbidden":
            self._unfollow()  # never poll with credentials read before the refusal
            return
        follow = Follow(source.url, source.branch, source.interval, source.timeout, credentials)
        if follow != self._follow:
            self._follow = follow
            self._feed.follow(self.key, follow, self.on_update)

    async def _credentials(
        self, source: v1.GitSource, as_user: str | None
    ) -> GitCredentials | None:
        if source.secret_ref is None:
            self._clear_secret_error()
            return None
        try:
            data = await asyncio.to_thread(
                registries.read_secret, self.namespace, source.secret_ref.name, as_user
            )
        except registries.SecretNotFoundError as error:
            self._source = SourceView(None, None, None, None, str(error), "SecretNotFound", True)
            return None
        except registries.SecretForbiddenError as error:
            self._source = SourceView(None, None, None, None, str(error), "SecretForbidden", True)
            return None
        self._clear_secret_error()
        return credentials_from_secret(data)

    def _clear_secret_error(self) -> None:
        """A Secret refusal lifted (RBAC granted, secretRef changed): wait for the next poll."""
        if self._source is not None and self._source.error_reason == "SecretForbidden":
            self._source = None

    async def _invalid_spec(self, body: dict[str, Any], error: ValidationError) -> None:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        await self._stalled(body, "InvalidSpec", f"invalid spec at {where}: {first['msg']}")

    async def _stalled(self, body: dict[str, Any], reason: str, message: str) -> None:
        """A spec the operator will not act on: one event, Ready=False and Stalled=True."""
        conditions = (body.get("status") or {}).get("conditions") or []
        if any(c.get("reason") == reason and c.get("message") == message for c in conditions):
            return  # said already: no event or status write per wake-up
        observability.record_event()
        self._record("Warning", "InvalidSpec", message)
        kopf.event(
            kopf.Body(cast(kopf.RawBody, body)), type="Warning", reason=reason, message=message
        )
        now = kopf_now()
        status = {
            "observedGeneration": body["metadata"].get("generation"),
            "conditions": [
                {
                    "type": kind,
                    "status": value,
                    "reason": reason,
                    "message": message if kind != "Reconciling" else "",
                    "lastTransitionTime": now,
                }
                for kind, value in (
                    ("Ready", "False"),
                    ("Reconciling", "False"),
                    ("Stalled", "True"),
                )
            ],
        }
        await asyncio.to_thread(registries.patch_status, self.namespace, self.name, status)

    def _post(self, body: dict[str, Any], outcome: Outcome) -> None:
        for notice in outcome.notices:
            observability.record_event()
            self._record(notice.type, notice.reason, notice.message)
            kopf.event(
                kopf.Body(cast(kopf.RawBody, body)),
                type=notice.type,
                reason=notice.reason,
                message=notice.message,
            )


def kopf_now() -> str:
    return rfc3339(datetime.now(UTC))
