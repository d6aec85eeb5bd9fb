"""The webhook receiver's listener: its own thread and event loop, every connection guarded.

What bounds the operator's latency under attack is the guard (connection_guard.py): deadlines,
a connection limit and a descriptor check that leave the operator its file descriptors (shared
by the process: main's unguarded listener took them all, and then the operator's own API calls
failed), and a connection that never completes its headers costs a guard and a timer. The thread
adds isolation from bursts of listener work: on one loop, a backlog of accepts, a 1 MiB body's
HMAC and JSON run in one loop iteration and every reconcile waits behind them; here the
interpreter hands the operator's thread a turn every switch interval (5 ms) whatever the
listener's Python code does. It shares the GIL, so not the listener's CPU: see README, "The
webhook port under a slowloris". The only crossing back is `Deliver`: a signed push's notice,
scheduled on the operator's loop without waiting for it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus

from aiohttp import web
from aiohttp.web_request import BaseRequest

from gitstage.adapters import metrics
from gitstage.operator.connection_guard import EVICTION_GRACE, REQUEST_MARGIN, ConnectionPool
from gitstage.operator.rejections import RejectionLog, one_line, server_logger
from gitstage.operator.settings import LISTEN_BACKLOG, WebhookLimits
from gitstage.operator.webhooks import WebhookReceiver

log = logging.getLogger(__name__)

START_TIMEOUT = 30.0  # seconds for the thread to bind its port
LOGGER = "gitstage.operator.webhooks.http"
# Seconds requests in flight get at shutdown: a lost delivery costs one poll interval at most.
SHUTDOWN_TIMEOUT = 2.0
# Seconds aiohttp reads (and drops) the rest of a body it refused (413, 408) before closing, so
# the sender reads the answer rather than a reset; within the request deadline of the guard.
LINGER = 2.0


@dataclass
class GuardedListener:
    """The receiver listening on the loop that opened it (`listen`), every connection guarded."""

    server: asyncio.Server
    runner: web.AppRunner
    pool: ConnectionPool
    rejections: RejectionLog

    @property
    def port(self) -> int:
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        self.server.close()
        await self.runner.cleanup()
        self.rejections.flush(final=True)


async def listen(
    receiver: WebhookReceiver,
    host: str,
    port: int,
    limits: WebhookLimits,
    *,
    grace: float = EVICTION_GRACE,
) -> GuardedListener:
    """Serve `receiver` on the running loop (`WebhookServer` calls it on a thread of its own)."""
    rejections = receiver.rejections

    def closed(reason: str, message: str) -> None:
        metrics.WEBHOOK_CONNECTIONS_CLOSED.labels(reason).inc()
        if reason != "idle_timeout":  # a kept-alive client going quiet is not an offence
            rejections.note(reason, message)

    app = receiver.app()
    pool = ConnectionPool(limits, closed, grace=grace)
    app.middlewares.append(pool.middleware)
    runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    assert runner.server is not None
    make = _protocols(runner.server, limits, server_logger(LOGGER, rejections))
    loop = asyncio.get_running_loop()
    try:
        server = await loop.create_server(
            pool.factory(make), host, port, reuse_address=True, backlog=LISTEN_BACKLOG
        )
    except OSError:  # the port is taken, say: `start` raises it
        await runner.cleanup()
        raise
    return GuardedListener(server, runner, pool, rejections)


@dataclass(frozen=True)
class Bound:
    """What the thread hands back once it listens."""

    listener: GuardedListener
    loop: asyncio.AbstractEventLoop
    stop: asyncio.Event


class WebhookServer:
    """Serves a `WebhookReceiver` on `host:port` from a thread of its own until `close`."""

    def __init__(
        self,
        receiver: WebhookReceiver,
        host: str,
        port: int,
        limits: WebhookLimits,
        *,
        grace: float = EVICTION_GRACE,
    ) -> None:
        self.name = "webhooks"
        self.host = host
        self.port = port  # the bound one once started (0 asks for any)
        self._receiver = receiver
        self._limits = limits
        self._grace = grace
        self._bound: concurrent.futures.Future[Bound] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._run, name="gitstage-webhooks", daemon=True)

    async def start(self) -> WebhookServer:
        """Start the thread; return once it listens (or raise what kept it from listening)."""
        self._thread.start()
        async with asyncio.timeout(START_TIMEOUT):
            bound = await asyncio.wrap_future(self._bound)
        self.port = bound.listener.port
        metrics.WEBHOOK_CONNECTIONS.set_function(self.open_connections)
        return self

    def open_connections(self) -> int:
        """Connections holding a slot now (read from any thread: one `len`)."""
        if not self._bound.done() or self._bound.exception() is not None:
            return 0
        return len(self._bound.result().listener.pool)

    async def close(self) -> None:
        if self._bound.done() and self._bound.exception() is None:
            bound = self._bound.result()
            with contextlib.suppress(RuntimeError):  # its loop already ended
                bound.loop.call_soon_threadsafe(bound.stop.set)
        await asyncio.to_thread(self._thread.join, START_TIMEOUT)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # handed to `start`, which raises it
            if not self._bound.done():
                self._bound.set_exception(error)
            else:
                log.error("the webhook listener stopped: %s", error)

    async def _serve(self) -> None:
        listener = await listen(
            self._receiver, self.host, self.port, self._limits, grace=self._grace
        )
        stop = asyncio.Event()
        self._bound.set_result(Bound(listener, asyncio.get_running_loop(), stop))
        try:
            await _until(stop, listener.rejections)
        finally:
            await listener.close()


async def _until(stop: asyncio.Event, rejections: RejectionLog) -> None:
    """Wait for `stop`, flushing the rejection log's counts once a window."""
    while not stop.is_set():
        try:
            async with asyncio.timeout(rejections.window):
                await stop.wait()
        except TimeoutError:
            rejections.flush()


class OneLineErrors(web.RequestHandler):
    """aiohttp's protocol, answering what it cannot parse in one line (its own answer quotes the
    offending bytes over several lines); it still logs them, to the rejection log."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs; raises if an answer began
        text = one_line(message or "") or HTTPStatus(status).phrase
        response = web.Response(status=status, text=text + "\n")
        response.force_close()
        return response


def _protocols(
    server: web.Server, limits: WebhookLimits, logger: logging.Logger
) -> Callable[[], asyncio.Protocol]:
    """What `Server.__call__` makes, with our error answers and limits."""
    loop = asyncio.get_running_loop()

    def make() -> asyncio.Protocol:
        return OneLineErrors(
            server,
            loop=loop,
            logger=logger,
            access_log=None,  # type: ignore[arg-type]  # documented: None logs no access
            # The guard closes idle connections; aiohttp's own timer only backs it up (on a late
            # loop wake-up, the earlier timer of the two would win and the guard not count it).
            keepalive_timeout=max(limits.header_timeout, limits.idle_timeout) + REQUEST_MARGIN,
            lingering_time=LINGER,
            max_line_size=limits.max_header_bytes,
            max_field_size=limits.max_header_bytes,
        )

    return make
