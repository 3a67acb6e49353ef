"""An embedded MQTT broker (amqtt) for the demo and for machines without Mosquitto."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


def free_port() -> int:
    """A TCP port on loopback that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def embedded_broker(port: int | None = None) -> AsyncIterator[str]:
    """Run amqtt on loopback for the duration of the block; yields its ``mqtt://`` URL."""
    from amqtt.broker import Broker

    # amqtt logs every packet at INFO; the demo's own output is what a newcomer should read.
    for name in ("amqtt", "transitions"):
        logging.getLogger(name).setLevel(logging.WARNING)
    port = port or free_port()
    broker = Broker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
    )
    await broker.start()
    try:
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        await broker.shutdown()


def main() -> None:
    """Run the embedded broker in the foreground: ``python -m gateway.broker PORT``."""
    import asyncio
    import sys

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 1883

    async def serve() -> None:
        async with embedded_broker(port) as url:
            print(url, flush=True)  # noqa: T201 - the parent process waits for this line
            await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
