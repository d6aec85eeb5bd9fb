"""Deadlines and a connection limit around an HTTP server's protocol (the webhook receiver's).

aiohttp's server has no header or body deadline, and asyncio's accept loop takes every
connection until the process runs out of file descriptors. Each accepted connection gets a
`ConnectionGuard` wrapping aiohttp's protocol; it sees every byte before aiohttp does (aiohttp
sees the connection only once its first request's headers are complete, so a slowloris costs a
guard and a timer, not aiohttp's parser and task) and closes the connection when its current
phase outlives its deadline:

  headers   from the connection's start, or its first byte after a response, to the blank line
            ending the headers: `header_timeout`, and at most `max_header_bytes` (else 431)
  request   from there until the handler returns having read the whole body: `body_timeout`
            (the handler answers 408 then; the guard aborts a request that outlives it by
            `REQUEST_MARGIN`, past the time aiohttp lingers on a refused body)
  idle      a kept-alive connection between requests: `idle_timeout`

Closing on a deadline aborts the connection: nothing is owed to a client that stalls, and a
client that reads nothing must not keep its descriptor while asyncio tries to flush to it.

The `ConnectionPool` holds at most `max_connections`. Past that, a newcomer takes the slot of:

  - the stalest connection of a peer address holding more than half the slots, when the
    newcomer comes from another address: one attacking address never locks a forge out;
  - else the connection longest in its phase, once it has been there `grace` seconds: a
    slowloris holds its connections in one phase for long, a forge's delivery spends
    milliseconds in each, so the delivery gets a slot while the attacker's stalest go.

When neither applies (every connection younger than `grace`: a flood of new connections, or
behind a proxy where every peer is the proxy), the newcomer is answered 503 and closed at once,
never queued.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from enum import Enum

from aiohttp import web

from gitstage.operator.settings import WebhookLimits

EVICTION_GRACE = 1.0  # seconds a connection keeps its slot, whatever it does
REQUEST_MARGIN = 5.0  # seconds past the body timeout before the guard closes a request
# The blank line ending the headers: CRLF CRLF, or a bare LF in it, which aiohttp answers with
# 400 once it has the request (a peer never waits for a header timeout instead).
_HEADERS_ENDS = (b"\n\r\n", b"\n\n")
_TAIL = 2  # bytes kept between reads: a blank line split across them

Closed = Callable[[str, str], None]  # (reason, one-line message): closed before an answer
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Phase(Enum):
    HEADERS = "headers"
    REQUEST = "request"
    IDLE = "idle"


def raw_response(status: str, text: str) -> bytes:
    """A whole HTTP/1.1 answer that closes the connection, written before aiohttp has a request."""
    body = (text + "\n").encode()
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


class ConnectionPool:
    """The open connections, all and per peer address, ordered by when their current phase began
    (stalest first)."""

    def __init__(
        self, limits: WebhookLimits, on_closed: Closed, *, grace: float = EVICTION_GRACE
    ) -> None:
        self.limits = limits
        self.on_closed = on_closed
        self._grace = grace
        self._open: OrderedDict[ConnectionGuard, None] = OrderedDict()
        self._peers: dict[str, OrderedDict[ConnectionGuard, None]] = {}
        self._by_transport: dict[asyncio.BaseTransport, ConnectionGuard] = {}

    def factory(self, make_inner: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for `loop.create_server`: each connection guarded."""
        return lambda: ConnectionGuard(self, make_inner)

    def __len__(self) -> int:
        return len(self._open)

    def admit(self, guard: ConnectionGuard, transport: asyncio.BaseTransport) -> bool:
        if len(self._open) >= self.limits.max_connections:
            victim = self._victim(guard.peer)
            if victim is None:
                return False
            victim.close("evicted", f"closed in its {victim.phase.value} phase to make room")
        self._open[guard] = None
        self._peers.setdefault(guard.peer, OrderedDict())[guard] = None
        self._by_transport[transport] = guard
        return True

    def _victim(self, peer: str) -> ConnectionGuard | None:
        """Whose slot a newcomer from `peer` takes, if anyone's.

        A peer holding more than half the slots loses its stalest to any other peer at once: one
        attacking address cannot lock out a forge at another, however fast it reconnects.
        Otherwise the stalest connection goes once it has been in its phase `grace` seconds.
        """
        hog = max(self._peers, key=lambda address: len(self._peers[address]))
        if hog != peer and len(self._peers[hog]) > self.limits.max_connections // 2:
            return next(iter(self._peers[hog]))
        stalest = next(iter(self._open))
        return stalest if stalest.phase_age() >= self._grace else None

    def moved(self, guard: ConnectionGuard) -> None:
        if guard in self._open:
            self._open.move_to_end(guard)
            self._peers[guard.peer].move_to_end(guard)

    def release(self, guard: ConnectionGuard, transport: asyncio.BaseTransport) -> None:
        if guard in self._open:
            del self._open[guard]
            held = self._peers[guard.peer]
            del held[guard]
            if not held:
                del self._peers[guard.peer]
        if self._by_transport.get(transport) is guard:
            del self._by_transport[transport]

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Tells the request's guard when its handler runs and when it has answered."""
        guard = self._by_transport.get(request.transport) if request.transport else None
        if guard is not None:
            guard.request_started()
        try:
            return await handler(request)
        finally:
            if guard is not None:
                guard.request_finished(body_read=request.content.is_eof())


def _headers_end(window: bytes) -> int:
    """Where the bytes after the headers begin in `window`, or -1."""
    ends = [at + len(end) for end in _HEADERS_ENDS if (at := window.find(end)) >= 0]
    return min(ends, default=-1)


class ConnectionGuard(asyncio.Protocol):
    """One connection: its phase, its deadline, and aiohttp's protocol behind it."""

    def __init__(self, pool: ConnectionPool, make_inner: Callable[[], asyncio.Protocol]) -> None:
        self._pool = pool
        self._make_inner = make_inner
        self._inner: asyncio.Protocol | None = None  # aiohttp's, once the first headers are in
        self._admitted = False
        self._first_headers = bytearray()  # what aiohttp gets when they are complete
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._deadline: asyncio.TimerHandle | None = None
        self.phase = Phase.HEADERS
        self.peer = ""  # the client's address, once connected
        self._phase_started = self._loop.time()
        self._header_bytes = 0
        self._tail = b""  # the last bytes seen in the headers phase: a split `\r\n\r\n`

    def phase_age(self) -> float:
        return self._loop.time() - self._phase_started

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        address = transport.get_extra_info("peername")
        self.peer = str(address[0]) if isinstance(address, tuple) else ""
        if not self._pool.admit(self, transport):
            self._pool.on_closed("refused", "refused: too many connections")
            transport.write(raw_response("503 Service Unavailable", "too many connections"))
            transport.close()
            return
        self._admitted = True
        self._enter(Phase.HEADERS)

    def data_received(self, data: bytes) -> None:
        if not self._admitted:
            return
        if self.phase is Phase.IDLE:
            self._enter(Phase.HEADERS)
        if self.phase is Phase.HEADERS and not self._headers_received(data):
            return
        if self._inner is None:
            self._first_headers += data
            if self.phase is not Phase.HEADERS:
                self._hand_over()
            return
        self._inner.data_received(data)

    def _hand_over(self) -> None:
        """The first request's headers are in: only now does aiohttp see the connection, so a
        connection that never gets that far costs no parser, task or timer of aiohttp's."""
        assert self._transport is not None
        self._inner = self._make_inner()
        self._inner.connection_made(self._transport)
        received, self._first_headers = bytes(self._first_headers), bytearray()
        self._inner.data_received(received)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        if self._transport is not None:
            self._pool.release(self, self._transport)
        inner, self._inner = self._inner, None
        if inner is not None:
            inner.connection_lost(exc)

    def request_started(self) -> None:
        if self.phase is not Phase.REQUEST:  # headers the scan did not see end (bare LFs)
            self._enter(Phase.REQUEST)

    def request_finished(self, *, body_read: bool) -> None:
        """Idle until the next request; unless bytes of this body are still due: then the answer
        closes the connection (after aiohttp lingers) and the request deadline stays."""
        if body_read:
            self._enter(Phase.IDLE)

    def close(self, reason: str, message: str, answer: bytes = b"") -> None:
        """Close before aiohttp answers (a deadline, the limit); the pool forgets it at once.

        With an `answer`, write it and close; else abort: a client that reads nothing must not
        keep the descriptor while asyncio waits to flush what aiohttp queued for it.
        """
        self._cancel_deadline()
        transport = self._transport
        if transport is None:
            return
        self._pool.release(self, transport)
        if transport.is_closing():
            return
        self._pool.on_closed(reason, message)
        if answer:
            transport.write(answer)
            transport.close()
        else:
            transport.abort()

    def _headers_received(self, data: bytes) -> bool:
        """Count header bytes up to the blank line; False when over the limit (closed)."""
        window = self._tail + data
        end = _headers_end(window)
        seen = len(data) if end < 0 else end - len(self._tail)
        self._header_bytes += seen
        limit = self._pool.limits.max_header_bytes
        if self._header_bytes > limit:
            self._refuse_headers(limit)
            return False
        if end < 0:
            self._tail = window[-_TAIL:]
        else:
            self._enter(Phase.REQUEST)
        return True

    def _refuse_headers(self, limit: int) -> None:
        text = f"request line and headers exceed {limit} bytes"
        answer = raw_response("431 Request Header Fields Too Large", text)
        self.close("header_too_large", text, answer)

    def _enter(self, phase: Phase) -> None:
        self.phase = phase
        self._phase_started = self._loop.time()
        self._header_bytes, self._tail = 0, b""
        self._pool.moved(self)
        self._cancel_deadline()
        self._deadline = self._loop.call_later(self._timeout(phase), self._expired)

    def _timeout(self, phase: Phase) -> float:
        limits = self._pool.limits
        if phase is Phase.HEADERS:
            return limits.header_timeout
        if phase is Phase.REQUEST:
            return limits.body_timeout + REQUEST_MARGIN
        return limits.idle_timeout

    def _expired(self) -> None:
        self._deadline = None
        limits = self._pool.limits
        if self.phase is Phase.HEADERS:
            message = f"no complete request headers within {limits.header_timeout:g} s"
            self.close("header_timeout", message)
        elif self.phase is Phase.REQUEST:
            waited = self._timeout(Phase.REQUEST)
            self.close("request_timeout", f"request not answered within {waited:g} s")
        else:
            self.close("idle_timeout", f"idle for {limits.idle_timeout:g} s")

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
