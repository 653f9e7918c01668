"""Publish the deployment's ports on the host's loopback: a TCP forwarder run by the `limr-ports` container.

Docker does not publish ports of containers that sit only on `internal` networks (no NAT, no route out), so
this one container joins the host's network namespace, listens on 127.0.0.1 only and forwards each connection
to a container's fixed address on the internal bridge. Traffic never leaves the machine.

    python3 portproxy.py 127.0.0.1:18080=172.20.0.5:8080 127.0.0.1:19090=172.20.0.7:9090 ...
"""

from __future__ import annotations

import asyncio
import sys


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


def _handler(host: str, port: int):
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            upstream_r, upstream_w = await asyncio.open_connection(host, port)
        except OSError:
            client_w.close()  # the container is down: refuse, as a closed port would
            return
        await asyncio.gather(_pipe(client_r, upstream_w), _pipe(upstream_r, client_w))

    return handle


async def main(rules: list[str]) -> None:
    servers = []
    for rule in rules:
        listen, _, target = rule.partition("=")
        lhost, lport = listen.rsplit(":", 1)
        thost, tport = target.rsplit(":", 1)
        servers.append(await asyncio.start_server(_handler(thost, int(tport)), lhost, int(lport)))
        print(f"forwarding {listen} -> {target}", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
