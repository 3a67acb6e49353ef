"""RDM6300 simulator: the exact 14-byte frames, repeated while a tag is held to the antenna."""

from __future__ import annotations

import asyncio
from pathlib import Path

from drivers.rdm6300 import encode_frame
from drivers.simulators.pty import PtyDevice

# Time per byte at 9600 8N1 (10 bits): a pty ignores the baud rate, so we pace writes ourselves.
BYTE_TIME_9600 = 10 / 9600


class Rdm6300Simulator(PtyDevice):
    """An RDM6300 on a pseudo-terminal.

    Args:
        link: stable path to expose as the serial port.
        paced: pace bytes at the real 9600 Bd line rate (≈ 14.6 ms per frame).
    """

    def __init__(self, link: Path, *, paced: bool = False) -> None:
        super().__init__(link)
        self.paced = paced

    async def tap(
        self, serial: int, *, version: int = 0x67, repeats: int = 3, interval: float = 0.1
    ) -> None:
        """Hold a tag in the field long enough for `repeats` frames, like a real tap."""
        frame = encode_frame(version, serial)
        for i in range(repeats):
            await self.send(frame)
            if i + 1 < repeats:
                await asyncio.sleep(interval)

    async def tap_uid(self, uid: bytes, *, repeats: int = 3, interval: float = 0.1) -> None:
        """Tap the tag whose 5-byte identity (version + serial) is `uid`."""
        if len(uid) != 5:
            raise ValueError("an EM4100 UID is 5 bytes: version + 32-bit serial")
        serial = int.from_bytes(uid[1:], "big")
        await self.tap(serial, version=uid[0], repeats=repeats, interval=interval)

    async def send(self, data: bytes, *, chunk: int = 0, gap: float = 0.0) -> None:
        """Write raw bytes (a frame, garbage, or a frame split across writes)."""
        if self.paced and chunk <= 0:
            await self.write(data, chunk=1, gap=BYTE_TIME_9600)
        else:
            await self.write(data, chunk=chunk, gap=gap)
