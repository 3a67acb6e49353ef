"""Base of simulators for command/response devices (SAM ID card reader, PN532).

A background task waits for host bytes on the pty, hands them to the device model, and writes its
replies with the faults a test asked for: garbage before a reply, replies split into chunks, slow
bytes, silence, or an answer only at one baud rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from types import TracebackType
from typing import Self

from drivers.simulators.pty import PtyDevice

logger = logging.getLogger(__name__)


class ResponderDevice(PtyDevice):
    """A pty device that answers host commands; subclasses implement `respond`.

    Args:
        link: stable path to expose as the serial port.
        baudrate: when set, commands are ignored unless the host configured this speed
            (a pty carries the termios speed even though it does not pace bytes).

    Attributes:
        mute: ignore every command (a hung device).
        garbage: bytes to write before the next reply (consumed once).
        chunk: split replies into pieces of this many bytes (0 = one write).
        gap: seconds between pieces (slow bytes).
        received: every chunk of bytes the host sent, in order.
    """

    def __init__(self, link: Path, *, baudrate: int | None = None) -> None:
        super().__init__(link)
        self.baudrate = baudrate
        self.mute = False
        self.garbage = b""
        self.chunk = 0
        self.gap = 0.0
        self.received: list[bytes] = []
        self._task: asyncio.Task[None] | None = None

    def respond(self, data: bytes) -> list[bytes]:
        """Consume host bytes; return the replies to send (override in subclasses)."""
        raise NotImplementedError

    def start(self) -> None:
        """Plug in and start answering in a background task."""
        self.plug()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._serve(), name=str(self.link))

    async def stop(self) -> None:
        """Stop answering and unplug."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.unplug()

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _serve(self) -> None:
        while True:
            data = await self.receive()
            self.received.append(data)
            if self.mute or (self.baudrate and self.line_baudrate() != self.baudrate):
                continue
            for reply in self.respond(data):
                await self._send(reply)

    async def _send(self, reply: bytes) -> None:
        data, self.garbage = self.garbage + reply, b""
        try:
            await self.write(data, chunk=self.chunk, gap=self.gap)
        except (RuntimeError, OSError) as err:  # unplugged mid-reply, like a yanked cable
            logger.debug("%s: reply lost: %s", self.link, err)
