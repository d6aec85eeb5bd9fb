"""The dashboard's HTTP side: read-only, access control (bearer token, login cookie, a proxy's
user header), the namespace filter, the live part and the event stream, the shipped assets,
and the operator's settings and flags for it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from gitstage.adapters.git.reader import read_registry
from gitstage.cli.main import cli
from gitstage.cli.ui import LOOPBACK
from gitstage.dashboard.access import (
    COOKIE,
    SESSION_SECONDS,
    Access,
    AccessError,
    judge,
    session_value,
    token_from_file,
)
from gitstage.dashboard.inputs import RegistrySnapshot, Snapshot
from gitstage.dashboard.server import CACHED_CHARACTERS, CACHED_PAGES, Dashboard, PageCache
from gitstage.operator.dashboard_source import WorkersProvider
from gitstage.operator.leader import Leadership
from gitstage.operator.settings import OperatorSettings, SettingsError
from gitstage.operator.worker import RegistryWorker
from tests.support.scratch import ScratchRepo, When
from tests.unit.test_api_unreachable import QuietFeed

TOKEN = "dash-token-0123456789"
STANDBY = "This replica is a standby"


class Swappable:
    """A provider whose snapshot the test replaces (as a poll result replaces the operator's)."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.current = snapshot

    def snapshot(self) -> Snapshot:
        return self.current

    def fingerprint(self) -> Hashable:
        return id(self.current)


def registry_snapshot(scratch: ScratchRepo, key: str, namespace: str) -> RegistrySnapshot:
    registry = read_registry(scratch.path)
    return RegistrySnapshot(
        key=key, url=f"https://git.example/{key}.git", namespace=namespace, state=registry.state
    )


@pytest.fixture
def provider(scratch: ScratchRepo) -> Swappable:
    commit = scratch.commit({"artifacts.yaml": "churn: {type: model, path: m.pkl}\n"}, When(0))
    scratch.tag("churn@v1.0.0", commit, When(1))
    return Swappable(
        Snapshot(
            (
                registry_snapshot(scratch, "ml/churn", "ml"),
                registry_snapshot(scratch, "other/fraud", "other"),
            ),
            cluster=True,
        )
    )


Scenario = Callable[[TestClient], Awaitable[None]]


def run(dashboard: Dashboard, scenario: Scenario) -> None:
    async def main() -> None:
        async with TestClient(TestServer(dashboard.app())) as client:
            await scenario(client)

    asyncio.run(main())


def test_pages_are_read_only_and_carry_security_headers(provider: Swappable) -> None:
    async def scenario(client: TestClient) -> None:
        page = await client.get("/")
        assert page.status == 200
        assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert page.headers["X-Frame-Options"] == "DENY"
        assert page.headers["Cache-Control"] == "no-store"
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            refused = await client.request(method, "/")
            assert refused.status == 405, method
        assert (await client.get("/rollouts")).status == 200
        missing = await client.get("/model", params={"repo": "git.example/x", "artifact": "y"})
        assert missing.status == 404

    run(Dashboard(provider, Access()), scenario)


def test_on_loopback_only_loopback_host_names_are_answered(provider: Swappable) -> None:
    async def scenario(client: TestClient) -> None:
        for host in ("127.0.0.1:8090", "localhost", "LOCALHOST:1", "[::1]:8090"):
            assert (await client.get("/", headers={"Host": host})).status == 200, host
        # A page whose name an attacker re-points at 127.0.0.1 (DNS rebinding) names its own.
        for host in ("attacker.example:8090", "127.0.0.1.attacker.example", "[::2]"):
            rebound = await client.get("/", headers={"Host": host})
            assert rebound.status == 421, host
            assert "churn" not in await rebound.text()
            assert rebound.headers["X-Frame-Options"] == "DENY"

    run(Dashboard(provider, Access(), hosts=frozenset(LOOPBACK)), scenario)


def test_the_event_stream_carries_the_security_headers(provider: Swappable) -> None:
    async def scenario(client: TestClient) -> None:
        stream = await client.get("/live")
        assert stream.headers["X-Frame-Options"] == "DENY"
        assert stream.headers["X-Content-Type-Options"] == "nosniff"
        assert stream.headers["Content-Security-Policy"].startswith("default-src 'none'")
        stream.close()

    run(Dashboard(provider, Access()), scenario)


def test_a_token_header_that_is_not_text_is_refused_not_an_error(provider: Swappable) -> None:
    async def status_of(client: TestClient, header: bytes) -> bytes:
        server = client.server
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n" + header + b"\r\n\r\n")
        await writer.drain()
        status = await reader.readline()
        writer.close()
        return status

    async def scenario(client: TestClient) -> None:
        # Bytes that are not UTF-8, as a client may send them (aiohttp's own would encode them).
        for header in (b"Authorization: Bearer \xff", b"Cookie: gitstage_dashboard=\xff\xfe"):
            assert (await status_of(client, header)).startswith(b"HTTP/1.1 401"), header

    run(Dashboard(provider, Access(token=TOKEN)), scenario)


def test_a_bearer_token_or_its_login_cookie_is_required(provider: Swappable) -> None:
    async def scenario(client: TestClient) -> None:
        refused = await client.get("/")
        assert refused.status == 401
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert 'action="login"' in await refused.text()
        wrong = await client.get("/", headers={"Authorization": "Bearer nope"})
        assert wrong.status == 401
        right = await client.get("/", headers={"Authorization": f"Bearer {TOKEN}"})
        assert right.status == 200
        failed = await client.post("/login", data={"token": "nope"}, allow_redirects=False)
        assert failed.status == 401
        assert "Wrong token." in await failed.text()
        login = await client.post("/login", data={"token": TOKEN}, allow_redirects=False)
        assert login.status == 303
        cookie = login.cookies["gitstage_dashboard"]
        assert TOKEN not in cookie.value
        assert cookie["httponly"]
        assert (await client.get("/")).status == 200  # the client keeps the cookie
        assert (await client.get("/static/live.js")).status == 200

    run(Dashboard(provider, Access(token=TOKEN)), scenario)


def test_a_session_expires_cannot_be_forged_and_ends_on_sign_out(provider: Swappable) -> None:
    now = time.time()
    access = Access(token=TOKEN)
    fresh = session_value(TOKEN, now)
    expires, _, signature = fresh.partition(".")
    assert int(expires) == int(now) + SESSION_SECONDS
    assert judge(access, {}, {COOKIE: fresh}).allowed
    stale = session_value(TOKEN, now - SESSION_SECONDS - 1)
    assert not judge(access, {}, {COOKIE: stale}).allowed  # expired
    later = str(int(expires) + 10**6)
    assert not judge(access, {}, {COOKIE: f"{later}.{signature}"}).allowed  # expiry moved
    assert not judge(access, {}, {COOKIE: session_value("another-token-0123456", now)}).allowed
    for garbage in ("", ".", "x.y", f"{'9' * 40}.{signature}", f"-1.{signature}"):
        assert not judge(access, {}, {COOKIE: garbage}).allowed, garbage

    async def scenario(client: TestClient) -> None:
        login = await client.post(
            "/login",
            data={"token": TOKEN},
            headers={"X-Forwarded-Proto": "https"},  # an Ingress that ended TLS
            allow_redirects=False,
        )
        cookie = login.cookies[COOKIE]
        assert (cookie["max-age"], cookie["secure"]) == (str(SESSION_SECONDS), True)
        client.session.cookie_jar.clear()  # a Secure cookie never goes back over plain HTTP
        plain = await client.post("/login", data={"token": TOKEN}, allow_redirects=False)
        assert not plain.cookies[COOKIE]["secure"]
        page = await (await client.get("/")).text()
        assert 'action="logout"' in page
        out = await client.post("/logout", allow_redirects=False)
        assert (out.status, out.headers["Location"]) == (303, "login")
        assert (await client.get("/")).status == 401  # the cookie is gone

    run(Dashboard(provider, Access(token=TOKEN)), scenario)


def test_a_short_token_is_refused_at_start(tmp_path: Path) -> None:
    short = tmp_path / "token"
    short.write_text("hunter2\n")
    with pytest.raises(AccessError, match=r"has 7 characters: use at least 16"):
        token_from_file(str(short))
    result = CliRunner().invoke(cli, ["ui", "--token-file", str(short)])
    assert result.exit_code == 2
    assert "hunter2" not in result.output


def test_a_proxy_header_names_the_user_and_is_required(provider: Swappable) -> None:
    async def scenario(client: TestClient) -> None:
        assert (await client.get("/")).status == 401
        page = await client.get("/", headers={"X-Forwarded-User": "<b>ann</b>@example.com"})
        assert page.status == 200
        assert "signed in as &lt;b&gt;ann&lt;/b&gt;@example.com" in await page.text()

    run(Dashboard(provider, Access(user_header="X-Forwarded-User")), scenario)


def test_the_namespace_filter_hides_other_namespaces(provider: Swappable) -> None:
    async def scenario(client: TestClient) -> None:
        models = await (await client.get("/")).text()
        assert "git.example/ml/churn" in models
        assert "other/fraud" not in models
        rollouts = await (await client.get("/rollouts")).text()
        assert 'data-registry="ml/churn"' in rollouts
        assert "other/fraud" not in rollouts

    run(Dashboard(provider, Access(), frozenset({"ml"})), scenario)


def test_the_stream_announces_a_new_generation_and_the_fragment_follows(
    provider: Swappable, scratch: ScratchRepo
) -> None:
    async def scenario(client: TestClient) -> None:
        stream = await client.get("/live")
        assert stream.headers["Content-Type"] == "text/event-stream"
        first = await stream.content.readuntil(b"\n\n")
        assert first.startswith(b"event: change\ndata: ")
        before = int(first.split(b"data: ")[1])
        commit = scratch.commit({"x.txt": "x"}, When(5))
        scratch.tag("churn#prod#1", commit, When(6))
        provider.current = Snapshot((registry_snapshot(scratch, "ml/churn", "ml"),), True)
        announced = await asyncio.wait_for(stream.content.readuntil(b"\n\n"), timeout=10)
        assert announced == f"event: change\ndata: {before + 1}\n\n".encode()
        stream.close()
        fragment = await client.get("/", headers={"X-Dashboard-Fragment": "live"})
        text = await fragment.text()
        assert not text.startswith("<!doctype")
        assert 'data-stage="prod"' in text

    run(Dashboard(provider, Access()), scenario)


def test_a_standby_replica_says_so_until_it_is_elected(tmp_path: Path) -> None:
    leadership = Leadership(leader=False)
    settings = OperatorSettings(fetcher_image="fetcher:1", cache_dir=tmp_path)
    workers = {"ml/churn": RegistryWorker("ml", "churn", QuietFeed(), settings, leadership)}
    provider = WorkersProvider(workers, leadership)

    async def scenario(client: TestClient) -> None:
        for path in ("/", "/rollouts"):
            assert STANDBY in await (await client.get(path)).text(), path
        standby_fingerprint = provider.fingerprint()
        leadership.elected()
        assert provider.fingerprint() != standby_fingerprint  # the live part is redrawn
        fragment = await client.get("/", headers={"X-Dashboard-Fragment": "live"})
        assert STANDBY not in await fragment.text()
        assert STANDBY not in await (await client.get("/rollouts")).text()

    run(Dashboard(provider, Access()), scenario)


def test_the_assets_ship_in_the_package(provider: Swappable) -> None:
    async def scenario(client: TestClient) -> None:
        css = await client.get("/static/dashboard.css")
        assert css.status == 200
        assert css.content_type == "text/css"
        script = await client.get("/static/live.js")
        assert "EventSource" in await script.text()
        assert (await client.get("/static/../server.py")).status == 404
        assert (await client.get("/static/server.py")).status == 404

    run(Dashboard(provider, Access()), scenario)


def test_operator_settings_of_the_dashboard(tmp_path: Path) -> None:
    base = {"GITSTAGE_CACHE_DIR": str(tmp_path)}
    assert OperatorSettings.from_env(base).dashboard is None
    token = tmp_path / "token"
    token.write_text(f"\n{TOKEN}\n")
    settings = OperatorSettings.from_env(
        base
        | {
            "GITSTAGE_DASHBOARD_PORT": "8090",
            "GITSTAGE_DASHBOARD_TOKEN_FILE": str(token),
            "GITSTAGE_DASHBOARD_USER_HEADER": "X-Auth-Request-User",
            "GITSTAGE_DASHBOARD_NAMESPACES": "ml, ml-staging,",
        }
    )
    assert settings.dashboard is not None
    assert (settings.dashboard.host, settings.dashboard.port) == ("127.0.0.1", 8090)
    assert settings.dashboard_access == Access(TOKEN, "X-Auth-Request-User")
    assert TOKEN not in repr(settings)
    assert settings.dashboard_namespaces == frozenset({"ml", "ml-staging"})
    token.write_text("\n")
    with pytest.raises(SettingsError, match=r"^the dashboard token file .* is empty$"):
        OperatorSettings.from_env(base | {"GITSTAGE_DASHBOARD_TOKEN_FILE": str(token)})


def test_gitstage_ui_errors_are_one_line(tmp_path: Path) -> None:
    missing = CliRunner().invoke(cli, ["ui", "-r", str(tmp_path / "nothing-here")])
    assert missing.exit_code == 1
    assert missing.output.startswith("gitstage: error: ")
    assert len(missing.output.strip().splitlines()) == 1
    token = CliRunner().invoke(cli, ["ui", "--token-file", str(tmp_path / "absent")])
    assert token.exit_code == 2
    assert "cannot read the dashboard token file" in token.output


def test_the_page_cache_is_bounded_in_pages_and_characters() -> None:
    cache = PageCache()
    big = "x" * (CACHED_CHARACTERS // 3)
    for number in range(4):
        cache.put(("/", number), big)
    assert cache.get(("/", 0)) is None  # the oldest went: three fit
    assert [cache.get(("/", n)) is not None for n in (1, 2, 3)] == [True, True, True]
    cache.put(("/", "huge"), "x" * (CACHED_CHARACTERS + 1))
    assert cache.get(("/", "huge")) is None  # larger than the whole budget: never kept
    for number in range(CACHED_PAGES + 1):
        cache.put(("/small", number), "page")
    assert cache.get(("/small", 0)) is None
    assert cache.get(("/small", CACHED_PAGES)) == "page"
