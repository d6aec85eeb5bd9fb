"""The webhook receiver: a forge says a repository changed; every ModelRegistry following it polls.

POST /hooks/{github,gitlab,gitea,forgejo,bitbucket,generic}. Checks in order: body size (413),
signature or token (401), JSON (400). Then the payload's repository URLs are normalized and every
ModelRegistry that follows one of them asks its shared poller for a poll now; the PollerHub
coalesces a burst into one poll per repository. The answer is 202 whether or not a registry
follows the repository, so a caller learns nothing about what the operator watches.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web

from gitstage.adapters import metrics
from gitstage.domain.repo_urls import redact, repository_key
from gitstage.domain.webhooks.payloads import Ignored, Ping, PushNotice, parse
from gitstage.domain.webhooks.signatures import Forge, WebhookRejected, authenticate

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20  # GitHub caps payloads at 25 MB, but push payloads are small


class Targets(Protocol):
    """Who follows which repository, and how to ask for a poll (the operator's `HubFeed`)."""

    def followers_of(self, repositories: set[str]) -> list[str]: ...

    def request(self, key: str) -> bool: ...


class WebhookReceiver:
    def __init__(
        self, targets: Targets, secrets: tuple[bytes, ...], max_bytes: int = MAX_BODY_BYTES
    ) -> None:
        self._targets = targets
        self._secrets = secrets
        self._max_bytes = max_bytes

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self._max_bytes)
        for forge in Forge:
            app.router.add_post(f"/hooks/{forge.value}", self._handler(forge))
        return app

    def _handler(self, forge: Forge) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            status, text = await self.receive(forge, request)
            metrics.WEBHOOKS.labels(forge.value, _outcome(status, text)).inc()
            return web.Response(status=status, text=text + "\n")

        return handle

    async def receive(self, forge: Forge, request: web.Request) -> tuple[int, str]:
        length = request.content_length
        if length is not None and length > self._max_bytes:
            return 413, f"body of {length} bytes exceeds the limit of {self._max_bytes}"
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:  # chunked bodies have no Content-Length
            return 413, f"body exceeds the limit of {self._max_bytes} bytes"
        headers = {name.lower(): value for name, value in request.headers.items()}
        try:
            authenticate(forge, headers, body, self._secrets)
            notice = parse(forge, headers, body)
        except WebhookRejected as error:
            log.info("webhook %s rejected (%d): %s", forge.value, error.status, error)
            return error.status, str(error)
        if isinstance(notice, Ping):
            return 200, "pong"
        if isinstance(notice, Ignored):
            return 202, f"ignored {notice.event} event"
        self._poll(notice)
        return 202, "accepted"

    def _poll(self, notice: PushNotice) -> None:
        keys = {repository_key(url) for url in notice.repositories}
        followers = self._targets.followers_of(keys)
        for follower in followers:
            self._targets.request(follower)
        metrics.WEBHOOK_POLLS.inc(len(followers))
        log.info(
            "webhook %s %s for %s (%s): polling for %d ModelRegistries",
            notice.forge.value,
            notice.event,
            redact(notice.repositories[0]),
            ", ".join(notice.refs[:5]) or "no refs named",
            len(followers),
        )


def _outcome(status: int, text: str) -> str:
    if status == 202:
        return "ignored" if text.startswith("ignored") else "accepted"
    if status == 200:
        return "ping"
    return str(status)
