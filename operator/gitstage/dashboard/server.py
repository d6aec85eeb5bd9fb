"""The dashboard's aiohttp application: read-only pages, their live part, and an event stream.

Pages are built from the provider's snapshot in a worker thread (a large registry table takes
tens of milliseconds: never on the operator's event loop) and cached per generation. The
generation moves when the provider's fingerprint does; the fingerprint is only checked while
a page is rendered or somebody listens to `live`, so an unwatched dashboard costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from aiohttp import web

from gitstage.dashboard import pages, views
from gitstage.dashboard.access import (
    COOKIE,
    SESSION_SECONDS,
    Access,
    judge,
    session_value,
    token_matches,
)
from gitstage.dashboard.inputs import Provider, Snapshot
from gitstage.dashboard.markup import Markup, tag

KEEPALIVE_SECONDS = 15.0
WATCH_SECONDS = 1.0
CACHED_PAGES = 32
CACHED_CHARACTERS = 4_000_000  # a few large pages at most: memory stays bounded
STATIC = {"dashboard.css": "text/css", "live.js": "text/javascript"}
PUBLIC = ("/static/", "/healthz", "/login", "/logout")
_FORMS = ("/login", "/logout")  # the only paths that take a POST
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; "
        "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Live:
    """The generation of what the pages show, and everybody waiting for the next one."""

    provider: Provider
    generation: int = 0
    _fingerprint: Hashable = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def current(self) -> int:
        fingerprint = self.provider.fingerprint()
        if fingerprint != self._fingerprint:
            self._fingerprint = fingerprint
            self.generation += 1
        return self.generation

    async def next_after(self, generation: int) -> int:
        """Returns when the generation moved past `generation`, on stop, or after a keepalive."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + KEEPALIVE_SECONDS
        while not self._stopping.is_set() and loop.time() < deadline:
            if self.current() != generation:
                return self.generation
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), WATCH_SECONDS)
        return self.generation

    def stop(self) -> None:
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()


class PageCache:
    """Rendered pages by (path, query, fragment, user, generation): the most recently used,
    at most CACHED_PAGES of them and CACHED_CHARACTERS in all."""

    def __init__(self) -> None:
        self._pages: OrderedDict[tuple[object, ...], str] = OrderedDict()
        self._size = 0

    def get(self, key: tuple[object, ...]) -> str | None:
        found = self._pages.get(key)
        if found is not None:
            self._pages.move_to_end(key)
        return found

    def put(self, key: tuple[object, ...], page: str) -> None:
        if len(page) > CACHED_CHARACTERS or key in self._pages:
            return
        self._pages[key] = page
        self._size += len(page)
        while len(self._pages) > CACHED_PAGES or self._size > CACHED_CHARACTERS:
            _, dropped = self._pages.popitem(last=False)
            self._size -= len(dropped)


@dataclass(frozen=True)
class Rendered:
    status: int
    html: str


class Dashboard:
    """The pages over one provider; `app()` is what a listener serves."""

    def __init__(
        self,
        provider: Provider,
        access: Access,
        namespaces: frozenset[str] = frozenset(),
        hosts: frozenset[str] | None = None,
    ) -> None:
        """`hosts`: the only host names a request may name (its Host header), for a dashboard
        served on loopback: a web page whose name an attacker points at 127.0.0.1 (DNS
        rebinding) names its own host, and is refused. None: any (behind a Service)."""
        self.provider = provider
        self.access = access
        self.namespaces = namespaces
        self.hosts = hosts
        self.live = Live(provider)
        self.cache = PageCache()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        app.router.add_get("/", self._models)
        app.router.add_get("/model", self._model)
        app.router.add_get("/rollouts", self._rollouts)
        app.router.add_get("/live", self._stream)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/healthz", self._health)
        if self.access.token is not None:
            app.router.add_get("/login", self._login_form)
            app.router.add_post("/login", self._login)
            app.router.add_post("/logout", self._logout)
        app.on_shutdown.append(self._shutdown)
        return app

    # -- pages ---------------------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.StreamResponse:
        query = request.query.get("q", "")
        number = request.query.get("page", "1")
        wanted = int(number) if number.isdigit() and len(number) < 7 else 1

        def render(snapshot: Snapshot, chrome: pages.Chrome, fragment: bool) -> Rendered:
            page = views.models_page(snapshot, query, wanted)
            return Rendered(200, pages.models_html(page, chrome, fragment))

        return await self._page(request, render)

    async def _model(self, request: web.Request) -> web.StreamResponse:
        repository = request.query.get("repo", "")
        artifact = request.query.get("artifact", "")

        def render(snapshot: Snapshot, chrome: pages.Chrome, fragment: bool) -> Rendered:
            page = views.model_page(snapshot, repository, artifact)
            if page is None:
                what = f"No artifact {artifact!r} in repository {repository!r}."
                return Rendered(404, pages.message_html("Not found", what, chrome))
            return Rendered(200, pages.model_html(page, chrome, fragment))

        return await self._page(request, render)

    async def _rollouts(self, request: web.Request) -> web.StreamResponse:
        def render(snapshot: Snapshot, chrome: pages.Chrome, fragment: bool) -> Rendered:
            if not snapshot.cluster:
                what = "gitstage ui reads repositories only: rollouts are the operator's."
                return Rendered(404, pages.message_html("No cluster", what, chrome))
            page = views.rollouts_page(snapshot)
            return Rendered(200, pages.rollouts_html(page, chrome, fragment))

        return await self._page(request, render)

    async def _page(
        self,
        request: web.Request,
        render: Callable[[Snapshot, pages.Chrome, bool], Rendered],
    ) -> web.StreamResponse:
        fragment = request.headers.get("X-Dashboard-Fragment") == "live"
        user = self._user(request)
        generation = self.live.current()
        signed_in = self.access.token is not None and COOKIE in request.cookies
        key = (request.path, request.query_string, fragment, user, signed_in, generation)
        cached = self.cache.get(key)
        if cached is not None:
            return _html(200, cached)
        snapshot = views.in_namespaces(self.provider.snapshot(), self.namespaces)
        chrome = pages.Chrome(snapshot.cluster, generation, user, snapshot.standby, signed_in)
        rendered = await asyncio.to_thread(render, snapshot, chrome, fragment)
        if rendered.status == 200:
            self.cache.put(key, rendered.html)
        return _html(rendered.status, rendered.html)

    # -- live updates --------------------------------------------------------------------------

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",  # nginx (and so most Ingresses): do not buffer
            }
        )
        _secure(response)  # now: the headers leave with `prepare`, before the guard sees them
        await response.prepare(request)
        generation = self.live.current()
        try:
            await response.write(_event(generation))
            while not self.live.stopping:
                latest = await self.live.next_after(generation)
                if latest == generation:
                    await response.write(b": keepalive\n\n")
                    continue
                generation = latest
                await response.write(_event(generation))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response

    async def _shutdown(self, _: web.Application) -> None:
        self.live.stop()

    # -- the rest ------------------------------------------------------------------------------

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        content_type = STATIC.get(name)
        if content_type is None:
            raise web.HTTPNotFound()
        body = resources.files("gitstage.dashboard").joinpath("static", name).read_bytes()
        response = web.Response(body=body, content_type=content_type, charset="utf-8")
        response.headers["Cache-Control"] = "max-age=300"
        return response

    async def _health(self, _: web.Request) -> web.StreamResponse:
        return web.Response(text="ok\n")

    async def _login_form(self, request: web.Request) -> web.StreamResponse:
        return _html(200, _login_page(failed=False))

    async def _login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        offered = form.get("token")
        if not isinstance(offered, str) or not token_matches(self.access, offered):
            return _html(401, _login_page(failed=True))
        assert self.access.token is not None  # the route exists only with a token
        redirect = web.HTTPSeeOther("./")
        redirect.set_cookie(
            COOKIE,
            session_value(self.access.token),
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="Strict",
            secure=_over_tls(request),
            path="/",
        )
        raise redirect

    async def _logout(self, request: web.Request) -> web.StreamResponse:
        redirect = web.HTTPSeeOther("login")
        redirect.del_cookie(COOKIE, path="/")
        raise redirect

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Read-only, authenticated, and the security headers on every answer."""
        try:
            response = await self._checked(request, handler)
        except web.HTTPException as error:
            _secure(error)
            raise
        return _secure(response)

    async def _checked(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.hosts is not None and _host_name(request.host) not in self.hosts:
            message = "This dashboard answers only to the names of this machine's loopback."
            return _html(421, _bare_page("Misdirected request", message))
        if request.method not in ("GET", "HEAD") and request.path not in _FORMS:
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "HEAD"])
        if request.path.startswith(PUBLIC):
            return await handler(request)
        verdict = judge(self.access, request.headers, request.cookies)
        if not verdict.allowed:
            return _refused(verdict.reason)
        return await handler(request)

    def _user(self, request: web.Request) -> str | None:
        """The signed-in user a trusted proxy names (the guard let the request through)."""
        return judge(self.access, request.headers, request.cookies).user


def _over_tls(request: web.Request) -> bool:
    """Whether the browser reached us over TLS: directly, or through a proxy (an Ingress) that
    ended it and says so. Trusting the header costs nothing: it only adds `Secure` to the
    cookie this same browser receives."""
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or forwarded == "https"


def _host_name(host: str) -> str:
    """The Host header's name, without its port (`[::1]:8090` -> `::1`), lower-cased."""
    name = host.rpartition("]")[0].lstrip("[") if host.startswith("[") else host.partition(":")[0]
    return name.lower()


def _secure(response: web.StreamResponse) -> web.StreamResponse:
    response.headers.update(SECURITY_HEADERS)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _event(generation: int) -> bytes:
    return f"event: change\ndata: {generation}\n\n".encode()


def _html(status: int, html: str) -> web.Response:
    response = web.Response(status=status, text=html, content_type="text/html", charset="utf-8")
    response.enable_compression()  # gzip or deflate when the browser accepts it: tables shrink
    return response


def _refused(reason: str) -> web.Response:
    if reason == "user":
        message = "Sign in through the proxy in front of this dashboard."
        return _html(401, _bare_page("Not signed in", message))
    response = _html(401, _login_page(failed=False))
    response.headers["WWW-Authenticate"] = 'Bearer realm="gitstage dashboard"'
    return response


def _bare_page(title: str, message: str) -> str:
    return pages.message_html(title, message, pages.Chrome(cluster=False, generation=0))


def _login_page(*, failed: bool) -> str:
    form = tag(
        "form",
        {"method": "post", "action": "login", "class": "search"},
        tag("label", {"for": "token"}, "Dashboard token"),
        tag(
            "input",
            {
                "id": "token",
                "name": "token",
                "type": "password",
                "required": True,
                "autocomplete": "current-password",
            },
        ),
        tag("button", {"type": "submit"}, "Sign in"),
    )
    note = tag("p", {"class": "error", "role": "alert"}, "Wrong token.") if failed else None
    chrome = pages.Chrome(cluster=False, generation=0)
    return pages.document(
        "Sign in", "", chrome, [tag("h1", None, "Sign in"), note, form], Markup(""), fragment=False
    )


async def serve_until_stopped(
    dashboard: Dashboard,
    host: str,
    port: int,
    announce: Callable[[int], None],
    background: Coroutine[Any, Any, None],
) -> None:
    """Serve on host:port (0: any free port, announced) while `background` runs."""
    runner = web.AppRunner(dashboard.app(), access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        addresses = runner.addresses
        announce(int(addresses[0][1]) if addresses else port)
        await background
    finally:
        background.close()
        await runner.cleanup()
