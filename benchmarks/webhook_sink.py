"""The guarded webhook listener alone in a process: what webhook_slowloris.py aims the attack at
to tell the machine's load (the attacker's CPU, the churn of connections) from the operator's.

Prints `listening PORT`, then serves until SIGTERM.

    PYTHONPATH=operator:. python -m benchmarks.webhook_sink
"""

from __future__ import annotations

import asyncio
import signal

from gitstage.operator.settings import WebhookLimits
from gitstage.operator.webhook_server import WebhookServer
from gitstage.operator.webhooks import WebhookReceiver


async def serve() -> None:
    receiver = WebhookReceiver(lambda notice: None, (b"sink-secret",))
    server = await WebhookServer(receiver, "127.0.0.1", 0, WebhookLimits()).start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print(f"listening {server.port}", flush=True)
    await stop.wait()
    await server.close()


if __name__ == "__main__":
    asyncio.run(serve())
