"""The webhook listener under attack, over real loopback sockets: slow and half-sent requests,
idle connections, more connections than the limit, oversized headers and hostile bytes.

The listener runs on its own thread (as in the operator); each test's event loop plays the
operator's, where a signed delivery's poll request lands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from gitstage.adapters import metrics
from gitstage.domain.repo_urls import repository_key
from gitstage.operator.connection_guard import EVICTION_GRACE
from gitstage.operator.rejections import BURST
from gitstage.operator.settings import WebhookLimits
from gitstage.operator.webhook_server import WebhookServer
from gitstage.operator.webhooks import WebhookReceiver, on_loop
from tests.support import forge_payloads as fp

SECRET = b"limits-secret-5e1f"
REPO_URL = "https://git.example.com/ml/registry.git"
FOLLOWER = "ml/registry"
DEADLINE = 20.0  # seconds any awaited condition gets; the timeouts under test are far shorter
SHORT = 0.5  # seconds: the timeout under test


class Followers:
    """The operator's feed as the receiver sees it: one ModelRegistry follows REPO_URL."""

    def __init__(self) -> None:
        self.requested: list[str] = []
        self.threads: set[int] = set()

    def followers_of(self, repositories: set[str]) -> list[str]:
        self.threads.add(threading.get_ident())
        return [FOLLOWER] if repository_key(REPO_URL) in repositories else []

    def request(self, key: str, refs: Collection[str] = ()) -> bool:
        self.requested.append(key)
        return True


@dataclass
class Served:
    server: WebhookServer
    followers: Followers
    closed_before: dict[str, float] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return self.server.port

    def closed(self, reason: str) -> float:
        """Connections closed for `reason` since the server started."""
        return _closed(reason) - self.closed_before.get(reason, 0.0)


def _closed(reason: str) -> float:
    sample = metrics.REGISTRY.get_sample_value(
        "gitstage_webhook_connections_closed_total", {"reason": reason}
    )
    return sample or 0.0


REASONS = ("header_timeout", "idle_timeout", "evicted", "refused", "header_too_large")
Scenario = Callable[[Served], Coroutine[Any, Any, None]]


def run(limits: WebhookLimits, scenario: Scenario, *, grace: float = EVICTION_GRACE) -> None:
    async def main() -> None:
        followers = Followers()
        deliver = on_loop(asyncio.get_running_loop(), followers)
        receiver = WebhookReceiver(deliver, (SECRET,), body_timeout=limits.body_timeout)
        before = {reason: _closed(reason) for reason in REASONS}
        server = await WebhookServer(receiver, "127.0.0.1", 0, limits, grace=grace).start()
        try:
            await scenario(Served(server, followers, before))
        finally:
            await server.close()

    asyncio.run(main())


async def eventually(condition: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)  # polling interval


Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def connect(port: int, first: bytes = b"", *, source: str = "127.0.0.1") -> Stream:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    if first:
        writer.write(first)
        await writer.drain()
    return reader, writer


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (a reset ends it too)."""
    received = b""
    with contextlib.suppress(ConnectionResetError):
        async with asyncio.timeout(DEADLINE):
            while chunk := await reader.read(65536):
                received += chunk
    return received


async def trickle(writer: asyncio.StreamWriter, piece: bytes) -> None:
    """The slowloris: a few bytes every 50 ms, for as long as the server takes them."""
    with contextlib.suppress(ConnectionError):
        while not writer.is_closing():
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.05)  # the attack's pace, not a wait for a condition


def request_bytes(delivery: fp.Delivery, *, keep_alive: bool = False) -> bytes:
    headers = {
        "Host": "operator",
        "Content-Length": str(len(delivery.body)),
        "Connection": "keep-alive" if keep_alive else "close",
        **delivery.headers,
    }
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"POST {delivery.path} HTTP/1.1\r\n{head}\r\n".encode() + delivery.body


async def answer(reader: asyncio.StreamReader) -> tuple[int, str]:
    """One HTTP/1.1 answer off a kept-alive connection: status and body."""
    async with asyncio.timeout(DEADLINE):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        length = next(
            int(line.split(":")[1]) for line in lines if line.lower().startswith("content-length")
        )
        body = await reader.readexactly(length)
    return int(lines[0].split()[1]), body.decode()


def signed() -> fp.Delivery:
    return fp.generic_push([REPO_URL], SECRET, refs=["refs/tags/churn#prod#7"])


async def post_signed(port: int, *, source: str = "127.0.0.1") -> tuple[int, str]:
    """A forge's delivery, from `source` (any loopback address is another host to the server)."""
    delivery = signed()
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.post(
            f"http://127.0.0.1:{port}{delivery.path}", data=delivery.body, headers=delivery.headers
        ) as response,
    ):
        return response.status, await response.text()


HALF_SENT = b"POST /hooks/generic HTTP/1.1\r\nHost: operator\r\n"


async def fill(served: Served, count: int) -> list[Stream]:
    """`count` half-sent requests, once the server holds them all."""
    streams = [await connect(served.port, HALF_SENT) for _ in range(count)]
    await eventually(lambda: served.server.open_connections() == count, f"{count} admitted")
    return streams


@pytest.mark.fault
def test_a_half_sent_request_is_closed_after_the_header_timeout() -> None:
    async def scenario(served: Served) -> None:
        silent, _ = await connect(served.port, HALF_SENT)
        reader, writer = await connect(served.port, HALF_SENT)
        slow = asyncio.create_task(trickle(writer, b"X-Slow: 1\r\n"))  # bytes do not extend it
        assert await until_closed(silent) == b""  # closed without an answer
        assert await until_closed(reader) == b""
        slow.cancel()
        assert served.closed("header_timeout") == 2
        await eventually(lambda: served.server.open_connections() == 0, "the slots freed")

    run(WebhookLimits(header_timeout=SHORT), scenario)


@pytest.mark.fault
def test_a_trickled_body_is_answered_408_after_the_body_timeout() -> None:
    async def scenario(served: Served) -> None:
        head = b"POST /hooks/generic HTTP/1.1\r\nHost: operator\r\nContent-Length: 100000\r\n\r\n"
        reader, writer = await connect(served.port, head)
        slow = asyncio.create_task(trickle(writer, b"{"))
        received = await until_closed(reader)
        slow.cancel()
        assert received.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
        assert received.endswith(b"\r\n\r\nthe body did not arrive within 0.5 s\n")
        assert served.followers.requested == []

    run(WebhookLimits(body_timeout=SHORT), scenario)


@pytest.mark.fault
def test_an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() -> None:
    async def scenario(served: Served) -> None:
        reader, writer = await connect(served.port)
        for _ in range(2):  # kept alive: a second request on the same connection
            writer.write(request_bytes(signed(), keep_alive=True))
            assert await answer(reader) == (202, "accepted\n")
        assert await until_closed(reader) == b""
        assert served.closed("idle_timeout") == 1
        await eventually(lambda: served.followers.requested == [FOLLOWER] * 2, "two polls asked")

    run(WebhookLimits(idle_timeout=SHORT), scenario)


@pytest.mark.fault
def test_past_the_limit_the_stalest_connections_go_and_a_signed_delivery_gets_202() -> None:
    async def scenario(served: Served) -> None:
        server = served.server
        oldest = await fill(served, 8)
        newer = [await connect(served.port, HALF_SENT) for _ in range(8)]
        for reader, _ in oldest:  # each newcomer closed the stalest one to take its slot
            assert await until_closed(reader) == b""
        await eventually(lambda: served.closed("evicted") == 8, "8 evicted")
        assert server.open_connections() == 8
        assert await post_signed(served.port) == (202, "accepted\n")
        assert server.open_connections() <= 8
        await eventually(lambda: served.followers.requested == [FOLLOWER], "the poll asked")
        assert served.followers.threads == {threading.get_ident()}  # on the operator's loop
        assert served.closed("evicted") == 9  # the delivery took the stalest slowloris' slot
        assert served.closed("header_timeout") == 0
        for _, writer in newer:
            writer.close()

    limits = WebhookLimits(header_timeout=60, max_connections=8)
    run(limits, scenario, grace=0)


@pytest.mark.fault
def test_a_flood_of_new_connections_is_refused_at_once_not_queued() -> None:
    async def scenario(served: Served) -> None:
        held = await fill(served, 4)
        for _ in range(3):  # every slot is younger than the grace: nothing to evict
            reader, _ = await connect(served.port)
            received = await until_closed(reader)
            assert received.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
            assert received.endswith(b"\r\n\r\ntoo many connections\n")
        assert served.closed("refused") == 3
        assert served.server.open_connections() == 4
        for _, writer in held:
            writer.close()
        await eventually(lambda: served.server.open_connections() == 0, "the slots freed")
        assert await post_signed(served.port) == (202, "accepted\n")

    run(WebhookLimits(header_timeout=60, max_connections=4), scenario, grace=60)


@pytest.mark.fault
def test_a_slowloris_holding_every_slot_is_refused_more_and_a_forge_elsewhere_gets_202() -> None:
    async def scenario(served: Served) -> None:
        attack = await fill(served, 8)  # a slowloris holding every slot
        reader, _ = await connect(served.port, HALF_SENT)  # its next one: young slots, refused
        assert (await until_closed(reader)).startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        # The forge, at another address, takes the slowloris' stalest slot.
        assert await post_signed(served.port, source="127.0.0.2") == (202, "accepted\n")
        assert await until_closed(attack[0][0]) == b""
        assert (served.closed("refused"), served.closed("evicted")) == (1, 1)
        await eventually(lambda: served.followers.requested == [FOLLOWER], "the poll asked")
        for _, writer in attack[1:]:
            writer.close()

    run(WebhookLimits(header_timeout=60, max_connections=8), scenario, grace=60)


@pytest.mark.fault
def test_headers_past_the_byte_limit_get_431_and_a_large_body_does_not_count() -> None:
    async def scenario(served: Served) -> None:
        reader, _ = await connect(served.port, HALF_SENT + b"X-Pad: " + b"a" * 2000 + b"\r\n\r\n")
        received = await until_closed(reader)
        assert received.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
        assert received.endswith(b"\r\n\r\nrequest line and headers exceed 1024 bytes\n")
        assert served.closed("header_too_large") == 1
        refs = [f"refs/tags/churn#prod#{n}" for n in range(20_000)]  # a 500 KiB body
        big = fp.generic_push([REPO_URL], SECRET, refs=refs)
        reader, writer = await connect(served.port, request_bytes(big))  # in one write
        assert await answer(reader) == (202, "accepted\n")
        writer.close()

    run(WebhookLimits(max_header_bytes=1024), scenario)


def test_headers_arriving_a_few_bytes_at_a_time_are_read_whole() -> None:
    async def scenario(served: Served) -> None:
        request = request_bytes(signed())
        head, _, body = request.partition(b"\r\n\r\n")
        reader, writer = await connect(served.port)
        for start in range(0, len(head) + 4, 3):  # the blank line split across reads
            writer.write((head + b"\r\n\r\n")[start : start + 3])
            await writer.drain()
            await asyncio.sleep(0.001)  # separate segments: the pace of the sender
        writer.write(body)
        assert await answer(reader) == (202, "accepted\n")
        writer.close()

    run(WebhookLimits(), scenario)


def raw(path: str, headers: bytes, body: bytes) -> bytes:
    start = f"POST {path} HTTP/1.1\r\nHost: operator\r\nConnection: close\r\n".encode()
    length = f"Content-Length: {len(body)}\r\n".encode()
    return start + length + headers + b"\r\n" + body


def signature(body: bytes) -> bytes:
    return b"X-Signature: sha256=" + fp.hex_hmac(SECRET, body).encode() + b"\r\n"


def signed_raw(body: bytes) -> bytes:
    return raw("/hooks/generic", signature(body), body)


PUSH = b'{"repositories": ["' + REPO_URL.encode() + b'"]}'
HOSTILE = {
    "non-ASCII signature": (
        raw("/hooks/generic", b"X-Signature: sha256=\xff\xfe\xc3\xa9\r\n", PUSH),
        401,
        "X-Signature is not a hex SHA-256 digest",
    ),
    "undecodable GitLab token": (
        raw("/hooks/gitlab", b"X-Gitlab-Event: Push Hook\r\nX-Gitlab-Token: \xff\x80\r\n", PUSH),
        401,
        "X-Gitlab-Token does not match",
    ),
    "non-ASCII event": (
        raw(
            "/hooks/github",
            b"X-GitHub-Event: p\xffsh\r\n"
            + signature(PUSH).replace(b"X-Signature", b"X-Hub-Signature-256"),
            PUSH,
        ),
        400,
        "X-Github-Event is not an event name",
    ),
    "100,000 [": (signed_raw(b"[" * 100_000), 400, "malformed JSON: nested too deeply"),
    "malformed URL": (
        signed_raw(b'{"repositories": ["https://[git.example.com/ml/registry.git"]}'),
        400,
        "the generic payload has a malformed repository URL: Invalid IPv6 URL",
    ),
    "invalid UTF-8 body": (
        signed_raw(b'{"repositories": ["\xff\xfe"]}'),
        400,
        "malformed JSON: 'utf-8' codec can't decode byte 0xff in position 19: invalid start byte",
    ),
    "control byte in a header name": (
        raw("/hooks/generic", b"X-Sig\x01nature: x\r\n", PUSH),
        400,
        "Invalid header token",
    ),
    "malformed chunked body": (
        b"POST /hooks/generic HTTP/1.1\r\nHost: operator\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"zz\r\n{}\r\n0\r\n\r\n",
        400,
        "Invalid character in chunk size",
    ),
    "bare LF line endings": (
        b"POST /hooks/generic HTTP/1.1\nHost: operator\nContent-Length: 2\n\n{}",
        400,
        None,
    ),
    "TLS on the plain port": (
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(32)) + b"\r\n\r\n",
        400,
        None,
    ),
}


@pytest.mark.fault
@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_bytes_get_a_one_line_4xx_and_no_traceback(
    case: str, caplog: pytest.LogCaptureFixture
) -> None:
    request, status, text = HOSTILE[case]

    async def scenario(served: Served) -> None:
        reader, _ = await connect(served.port, request)
        received = await until_closed(reader)
        head, _, body = received.partition(b"\r\n\r\n")
        assert int(head.split()[1]) == status, received
        assert body.endswith(b"\n"), body
        assert body.count(b"\n") == 1, body  # one line
        if text is not None:
            assert body.decode() == text + "\n"
        assert served.followers.requested == []

    with caplog.at_level(logging.DEBUG):
        run(WebhookLimits(), scenario)
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert "Traceback" not in caplog.text
    rejected = [r for r in caplog.records if r.name == "gitstage.operator.webhooks"]
    assert len(rejected) == 1
    assert "\n" not in rejected[0].getMessage()


@pytest.mark.fault
def test_a_flood_of_rejected_requests_writes_a_few_lines_and_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flood = 300

    async def scenario(served: Served) -> None:
        bad = fp.generic_push([REPO_URL], b"not-the-secret")
        reader, writer = await connect(served.port)
        for _ in range(flood):
            writer.write(request_bytes(bad, keep_alive=True))
            assert await answer(reader) == (401, "X-Signature does not match the body\n")
        writer.close()

    with caplog.at_level(logging.INFO, logger="gitstage"):
        run(WebhookLimits(), scenario)
    lines = [r.getMessage() for r in caplog.records if r.name == "gitstage.operator.webhooks"]
    assert (
        lines[:BURST]
        == ["webhook request rejected (401): generic: X-Signature does not match the body"] * BURST
    )
    assert len(lines) == BURST + 1
    assert lines[-1].startswith(f"webhook: {flood - BURST} more requests rejected in the last ")
    assert lines[-1].endswith(f" s (401 {flood - BURST})")


def test_a_port_in_use_is_an_error_at_start() -> None:
    async def main() -> None:
        taken = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = taken.sockets[0].getsockname()[1]
        receiver = WebhookReceiver(lambda notice: None, (SECRET,))
        try:
            with pytest.raises(OSError, match="address already in use"):
                await WebhookServer(receiver, "127.0.0.1", port, WebhookLimits()).start()
        finally:
            taken.close()

    asyncio.run(main())
