"""The webhook receiver: a forge says a repository changed; every ModelRegistry following it polls.

POST /hooks/{github,gitlab,gitea,forgejo,bitbucket,generic}. Checks in order: body size (413),
body within the body timeout (408), signature or token (401), JSON and its URLs (400). Then the
notice is handed to the operator's event loop (`deliver`), where `poll_followers` normalizes the
payload's repository URLs and asks every ModelRegistry following one of them for a poll now; the
PollerHub coalesces a burst into one poll per repository. The answer is 202 whether or not a
registry follows the repository, so a caller learns nothing about what the operator watches.

The receiver runs on a thread of its own (webhook_server.py): it never waits for the operator's
loop, and the operator's loop never runs webhook code but `poll_followers`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Protocol

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from gitstage.adapters import metrics
from gitstage.domain.repo_urls import redact, repository_key
from gitstage.domain.webhooks.payloads import Ignored, Ping, PushNotice, parse
from gitstage.domain.webhooks.signatures import Forge, WebhookRejected, authenticate
from gitstage.operator.rejections import RejectionLog, one_line
from gitstage.operator.settings import WebhookLimits

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20  # GitHub caps payloads at 25 MB, but push payloads are small

Deliver = Callable[[PushNotice], None]  # thread-safe: called on the receiver's thread
Answer = tuple[int, str]  # HTTP status and a one-line text


class Targets(Protocol):
    """Who follows which repository, and how to ask for a poll (the operator's `HubFeed`)."""

    def followers_of(self, repositories: set[str]) -> list[str]: ...

    def request(self, key: str, refs: Collection[str] = ()) -> bool: ...


class WebhookReceiver:
    def __init__(
        self,
        deliver: Deliver,
        secrets: tuple[bytes, ...],
        *,
        body_timeout: float = WebhookLimits().body_timeout,
        max_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self._deliver = deliver
        self._secrets = secrets
        self._body_timeout = body_timeout
        self._max_bytes = max_bytes
        self.rejections = RejectionLog(log)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self._max_bytes)
        for forge in Forge:
            app.router.add_post(f"/hooks/{forge.value}", self._handler(forge))
        return app

    def _handler(self, forge: Forge) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            status, text = await self.receive(forge, request)
            metrics.WEBHOOKS.labels(forge.value, _outcome(status, text)).inc()
            if status >= 400:
                self.rejections.note(str(status), f"{forge.value}: {text}")
            response = web.Response(status=status, text=text + "\n")
            if status in (408, 413):  # the rest of the body is not worth waiting for
                response.force_close()
            return response

        return handle

    async def receive(self, forge: Forge, request: web.Request) -> Answer:
        length = request.content_length
        if length is not None and length > self._max_bytes:
            return 413, f"body of {length} bytes exceeds the limit of {self._max_bytes}"
        body = await self._body(request)
        if isinstance(body, tuple):
            return body
        headers = {name.lower(): value for name, value in request.headers.items()}
        try:
            authenticate(forge, headers, body, self._secrets)
            notice = parse(forge, headers, body)
        except WebhookRejected as error:
            return error.status, str(error)
        if isinstance(notice, Ping):
            return 200, "pong"
        if isinstance(notice, Ignored):
            return 202, f"ignored {notice.event} event"
        self._deliver(notice)
        return 202, "accepted"

    async def _body(self, request: web.Request) -> bytes | Answer:
        """The whole body, or the answer when it is too big, too slow or malformed."""
        try:
            async with asyncio.timeout(self._body_timeout):
                return await request.read()
        except TimeoutError:
            return 408, f"the body did not arrive within {self._body_timeout:g} s"
        except web.HTTPRequestEntityTooLarge:  # chunked bodies have no Content-Length
            return 413, f"body exceeds the limit of {self._max_bytes} bytes"
        except HttpProcessingError as error:  # a malformed chunked encoding
            return 400, f"malformed body: {one_line(error.message) or 'unreadable'}"
        except ConnectionError:  # the caller went away (or was closed by the connection guard)
            return 400, "the connection was lost before the body ended"


def on_loop(loop: asyncio.AbstractEventLoop, targets: Targets) -> Deliver:
    """A `Deliver` that runs `poll_followers` on `loop` (the operator's) without waiting."""

    def deliver(notice: PushNotice) -> None:
        try:
            loop.call_soon_threadsafe(poll_followers, targets, notice)
        except RuntimeError:  # the operator's loop is closed: it is shutting down
            log.warning("webhook for %s dropped: the operator is stopping", notice.forge.value)

    return deliver


def poll_followers(targets: Targets, notice: PushNotice) -> None:
    """On the operator's loop: every ModelRegistry following a repository of the notice polls."""
    keys = {repository_key(url) for url in notice.repositories}
    followers = targets.followers_of(keys)
    for follower in followers:
        targets.request(follower, notice.refs)
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
