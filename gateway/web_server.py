"""Serve an ASGI app (the landlord portal) inside the daemon's TaskGroup.

uvicorn's `Server.serve` replaces the process's SIGTERM/SIGINT handlers while it runs, which
would take the daemon's clean shutdown away, and exits the process when its port is busy,
which would take the door with it. Here the signals stay the daemon's, cancellation stops the
server gracefully, and a busy port only turns the web page off, with a log line saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

logger = logging.getLogger(__name__)


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the daemon owns the signals


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


async def serve_asgi(app: Any, host: str, port: int, *, what: str = "portal") -> None:
    """Serve `app` until cancelled; a busy port logs and returns instead of raising.

    The socket is bound here, not by uvicorn: uvicorn answers a failed bind with `sys.exit`,
    which asyncio lets escape the event loop and would stop the whole daemon.
    """
    try:
        sock = _listen(host, port)
    except OSError as err:
        logger.error("%s: cannot listen on %s:%d (%s); the %s is off", what, host, port,  # noqa: TRY400
                     err, what)
        return
    server = _EmbeddedServer(
        uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]), name=f"{what}-uvicorn")
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5.0)
        raise
    finally:
        sock.close()
