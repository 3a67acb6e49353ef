"""Read a single card from a configured reader (for `doorgate card add --tap`)."""

from __future__ import annotations

import asyncio

from drivers.rdm6300 import BAUDRATE, Rdm6300Reader
from drivers.serial_transport import SerialTransport
from gateway.config import ReaderConfig


async def read_one_card(reader: ReaderConfig, timeout: float) -> str | None:
    """The hex UID of the first card presented within `timeout` seconds, else None."""
    if reader.kind != "rdm6300":
        raise ValueError(f"--tap supports rdm6300 readers for now, not {reader.kind}")
    async with SerialTransport(reader.port, reader.baud or BAUDRATE, name=reader.name) as link:
        try:
            async with asyncio.timeout(timeout):
                async for read in Rdm6300Reader(link).reads():
                    return read.uid_hex
        except TimeoutError:
            return None
    return None
