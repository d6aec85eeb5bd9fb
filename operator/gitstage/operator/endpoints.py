"""The operator's own HTTP listeners: metrics on the event loop kopf runs (the exposition itself
rendered in a thread); the webhook receiver, which faces the internet, on a thread of its own
(webhook_server.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from gitstage.adapters import metrics


class Listening(Protocol):
    """A started listener, whatever runs it."""

    name: str
    host: str
    port: int

    async def close(self) -> None: ...


@dataclass
class Endpoint:
    """A started listener; `port` is the bound one (useful when asked for port 0)."""

    name: str
    runner: web.AppRunner
    host: str
    port: int

    async def close(self) -> None:
        await self.runner.cleanup()


async def serve(name: str, app: web.Application, host: str, port: int) -> Endpoint:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    addresses = runner.addresses
    bound = int(addresses[0][1]) if addresses else port
    return Endpoint(name, runner, host, bound)


_RENDERER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metrics")


def metrics_app(before_scrape: Callable[[], None] | None = None) -> web.Application:
    async def scrape(_: web.Request) -> web.Response:
        if before_scrape is not None:
            before_scrape()
        # In a thread: a thousand registries' exposition takes a tenth of a second or more,
        # which would stall every worker's loop at each scrape. A thread of its own: in the
        # reconciles' pool a scrape queued behind a thousand rollouts and timed out.
        loop = asyncio.get_running_loop()
        body = await loop.run_in_executor(_RENDERER, metrics.exposition)
        response = web.Response(body=body)
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def ready(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    # The readiness probe: the operator's listeners are up (webhooks start before metrics).
    app.router.add_get("/readyz", ready)
    return app
