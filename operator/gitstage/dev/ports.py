"""Ports for servers started later (etcd, the API server, kubelet, test servers), reserved
without a bind-and-release race.

Binding port 0 and closing the socket (the usual `free_port`) leaves the port free for anyone
until our server binds it. `reserve_port` instead connects to its own listener and closes the
accepted side first, leaving the port in TIME_WAIT: the kernel hands it to no other `bind(0)`
for about a minute, while a server that sets SO_REUSEADDR (Go's, aiohttp's and asyncio's do)
can still listen on it. Nobody listens on it meanwhile, so it also serves as a closed port.
"""

from __future__ import annotations

import socket


def reserve_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, 0))
        listener.listen(1)
        port = int(listener.getsockname()[1])
        with socket.create_connection((host, port)) as client:
            accepted, _ = listener.accept()
            accepted.close()  # the server side closes first: its end waits in TIME_WAIT
            client.recv(1)  # the close has arrived
    return port
