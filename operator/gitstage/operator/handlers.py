"""kopf handlers: thin. Each ModelRegistry gets a worker task; other handlers wake it.

Workers are started and stopped from the ModelRegistries' watch events, not as kopf daemons: a
daemon makes kopf keep the object's whole body alive (65 MiB over 1,000 registries, measured
with benchmarks/scale.py) and a finalizer on it; a worker reads its object when it reconciles.

Run with `gitstage operator` (or `kopf run -m gitstage.operator.handlers`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from gitstage.adapters import metrics
from gitstage.adapters.kube import client as kube_client
from gitstage.adapters.mirror.poller import PollerHub
from gitstage.dashboard.server import Dashboard
from gitstage.operator import endpoints, observability
from gitstage.operator.dashboard_source import WorkersProvider
from gitstage.operator.endpoints import Listening
from gitstage.operator.feed import HubFeed
from gitstage.operator.kopf_tuning import NoDiffBase, quiet_routine_successes
from gitstage.operator.leader import Leadership, StandbyTargets, elect
from gitstage.operator.settings import OperatorSettings
from gitstage.operator.trim import trim_periodically
from gitstage.operator.webhook_server import WebhookServer
from gitstage.operator.webhooks import WebhookReceiver, on_loop
from gitstage.operator.worker import (
    FLUX_REQUESTED_AT,
    REQUESTED_AT,
    RegistryWorker,
)
from gitstage.resources import v1alpha1 as v1
from gitstage.workloads.labels import label_value
from gitstage.workloads.render import LABEL_BINDING, LABEL_REGISTRY, MANAGED_BY

WORKERS: dict[str, RegistryWorker] = {}
FEEDS: list[HubFeed] = []  # the running feed, for probes and tests
ENDPOINTS: dict[str, Listening] = {}  # running listeners by name (webhooks, metrics)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # kopf's bookkeeping under our own API group, not kopf.zalando.org.
    settings.persistence.finalizer = f"{v1.GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=v1.GROUP)
    settings.persistence.diffbase_storage = NoDiffBase()  # no change handlers to diff for
    # Explicit watch timeouts: silent, stalled watch streams are a known kopf failure mode.
    settings.watching.server_timeout = 120
    settings.watching.client_timeout = 150
    settings.watching.connect_timeout = 10
    settings.watching.reconnect_backoff = 1.0
    settings.posting.level = logging.INFO
    raw_event_handlers = (registry_event, deployment_changed, pod_changed)
    quiet_routine_successes(logging.getLogger("kopf.objects"), raw_event_handlers)
    # kopf keeps a worker per object alive this long after its last event, holding that
    # event's body (60 KB decoded for a Deployment): with the default 5 s, a thousand
    # registries' Deployments, pods and registries kept most of the ramp's bodies at once.
    settings.queueing.idle_timeout = KOPF_IDLE_TIMEOUT
    operator_settings = OperatorSettings.from_env()
    # Namespaced RBAC grants nothing cluster-scoped: serve the CRD found at start, list nothing.
    settings.scanning.disabled = not operator_settings.scanning
    memo["settings"] = operator_settings
    # Reads, git syncs and API calls run in threads, mostly waiting on sockets and child
    # processes: asyncio's default of cores + 4 threads queued a thousand registries' first
    # syncs and applies behind each other (benchmarks/scale.py).
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=WORKER_THREADS, thread_name_prefix="gitstage")
    )
    feed = HubFeed(PollerHub(operator_settings.cache_dir, on_poll=observability.record_poll))
    memo["feed"] = feed
    FEEDS[:] = [feed]
    memo["leadership"] = _start_election(operator_settings, memo)
    memo["trim"] = asyncio.create_task(trim_periodically(), name="malloc trim")
    await _start_endpoints(operator_settings, feed, memo["leadership"])


def _start_election(settings: OperatorSettings, memo: kopf.Memo) -> Leadership:
    """Always the leader alone; with --leader-elect, a Lease decides (see operator/leader.py)."""
    if settings.election is None:
        return Leadership()
    leadership = Leadership(leader=False)  # a standby until the Lease says otherwise
    leadership.on_elected.append(_wake_all)

    def stop() -> None:  # as controller-runtime does: exit, come back as a standby
        os.kill(os.getpid(), signal.SIGTERM)

    memo["election"] = asyncio.create_task(elect(settings.election, leadership, stop))
    return leadership


async def _start_endpoints(
    settings: OperatorSettings, feed: HubFeed, leadership: Leadership
) -> None:
    if settings.webhook is not None:
        limits = settings.webhook_limits
        targets = feed if settings.election is None else StandbyTargets(feed, leadership)
        deliver = on_loop(asyncio.get_running_loop(), targets)
        receiver = WebhookReceiver(
            deliver, settings.webhook_secrets, body_timeout=limits.body_timeout
        )
        listener = settings.webhook
        server = WebhookServer(receiver, listener.host, listener.port, limits)
        ENDPOINTS["webhooks"] = await server.start()
    if settings.metrics is not None:
        app = endpoints.metrics_app(lambda: metrics.POLLERS.set(len(feed.hub.stats())))
        listener = settings.metrics
        ENDPOINTS["metrics"] = await endpoints.serve("metrics", app, listener.host, listener.port)
    if settings.dashboard is not None:
        dashboard = Dashboard(
            WorkersProvider(WORKERS, leadership),
            settings.dashboard_access,
            settings.dashboard_namespaces,
        )
        listener = settings.dashboard
        ENDPOINTS["dashboard"] = await endpoints.serve(
            "dashboard", dashboard.app(), listener.host, listener.port
        )
    for endpoint in ENDPOINTS.values():
        logging.getLogger(__name__).info(
            "%s listening on %s:%d", endpoint.name, endpoint.host, endpoint.port
        )


@kopf.on.login()
def login(**_: Any) -> kopf.ConnectionInfo:
    """The same credentials as our own client: in-cluster, or $KUBECONFIG read at call time."""
    configuration = kube_client.api_client().configuration
    header = configuration.get_api_key_with_prefix("BearerToken") or ""
    scheme, _space, token = header.partition(" ")
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        scheme=scheme or None,
        token=token or None,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
        default_namespace=None,
    )


@kopf.on.cleanup()
async def shutdown(memo: kopf.Memo, **_: Any) -> None:
    await stop_workers()
    for task_name in ("election", "trim"):
        task = memo.get(task_name)
        if task is not None:
            task.cancel()
    for endpoint in list(ENDPOINTS.values()):
        await endpoint.close()
    ENDPOINTS.clear()
    feed: HubFeed = memo["feed"]
    await feed.close()


TASKS: dict[str, asyncio.Task[None]] = {}  # each worker's task, by the worker's key
# (namespace, the registry's label value) -> worker keys: who owns a labelled pod or Deployment
OWNERS: dict[tuple[str, str], set[str]] = {}
STOP_TIMEOUT = 10.0  # seconds a stopping operator waits for its workers' reconciles
WORKER_THREADS = 32
KOPF_IDLE_TIMEOUT = 1.0  # seconds


def ensure_worker(namespace: str, name: str, memo: kopf.Memo) -> None:
    """Start the registry's worker unless one runs (a stopping one is replaced)."""
    key = f"{namespace}/{name}"
    running = WORKERS.get(key)
    if running is not None and not running.stopping:
        return
    worker = RegistryWorker(namespace, name, memo["feed"], memo["settings"], memo.get("leadership"))
    WORKERS[key] = worker
    OWNERS.setdefault((namespace, label_value(name)), set()).add(key)
    TASKS[key] = asyncio.create_task(_serve(worker), name=f"worker {key}")


async def _serve(worker: RegistryWorker) -> None:
    """The registry's worker, for as long as the object exists."""
    try:
        await worker.run()
    finally:
        if WORKERS.get(worker.key) is worker:
            del WORKERS[worker.key]
            TASKS.pop(worker.key, None)
            owner = (worker.namespace, label_value(worker.name))
            OWNERS.get(owner, set()).discard(worker.key)
            if not OWNERS.get(owner, True):
                del OWNERS[owner]


def stop_worker(key: str) -> None:
    worker = WORKERS.get(key)
    if worker is not None:
        worker.stop()


async def stop_workers() -> None:
    for worker in list(WORKERS.values()):
        worker.stop()
    tasks = list(TASKS.values())
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
        for task in pending:
            task.cancel()


@kopf.on.event(v1.GROUP, v1.VERSION, v1.PLURAL)
async def registry_event(
    *,
    name: str,
    namespace: str | None,
    annotations: kopf.Annotations,
    meta: kopf.Meta,
    event: kopf.RawEvent,
    status: kopf.Status,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """Starts the registry's worker on first sight (kopf lists every object when it starts)
    and stops it on deletion. A new generation (the spec changed): reconcile. A changed
    `gitstage.dev/requestedAt` (or Flux's): poll the repository now. Every event also updates
    the registry's gauges from its status.

    Raw watch events only, no kopf change handler: kopf's diff base deep-copied every
    registry's body on each of its events (a fifth of the operator's loop during a thousand
    registries' rollout) and patched an annotation onto each new registry.
    """
    if event.get("type") == "DELETED":
        observability.forget(str(namespace), name)
        stop_worker(f"{namespace}/{name}")
        return
    observability.record_status(str(namespace), name, dict(status))
    ensure_worker(str(namespace), name, memo)
    worker = WORKERS.get(f"{namespace}/{name}")
    if worker is not None and worker.generation_moved(meta.get("generation")):
        worker.wake()
    value = annotations.get(REQUESTED_AT) or annotations.get(FLUX_REQUESTED_AT)
    if worker is not None and value is not None and value != worker.handled_request:
        worker.handled_request = value
        worker.request()


@kopf.on.event("apps", "v1", "deployments", labels={"app.kubernetes.io/managed-by": MANAGED_BY})
async def deployment_changed(labels: kopf.Labels, namespace: str | None, **_: Any) -> None:
    """Rollout progress of a Deployment we render: refresh its registry's status."""
    _wake_owner(labels, namespace)


@kopf.on.event("", "v1", "pods", labels={LABEL_REGISTRY: kopf.PRESENT, LABEL_BINDING: kopf.PRESENT})
async def pod_changed(labels: kopf.Labels, namespace: str | None, **_: Any) -> None:
    """A served pod changed (its fetcher failed, say): refresh its registry's status."""
    _wake_owner(labels, namespace)


def _wake_owner(labels: kopf.Labels, namespace: str | None) -> None:
    """Wake the worker whose registry labelled this object: one lookup, not a scan of every
    worker (pods and Deployments change thousands of times while a thousand registries roll)."""
    if LABEL_BINDING in labels and LABEL_REGISTRY in labels:
        for key in OWNERS.get((str(namespace), str(labels.get(LABEL_REGISTRY))), ()):
            _wake(key)


def _wake_all() -> None:
    """Elected: every worker reconciles now (a standby's workers only followed their sources)."""
    for worker in list(WORKERS.values()):
        worker.wake()


def _wake(key: str) -> None:
    worker = WORKERS.get(key)
    if worker is not None:
        worker.wake()
