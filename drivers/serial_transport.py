"""Asynchronous serial transport over pyserial: moves bytes, nothing else.

A port is a device path (`/dev/ttyUSB0`, a pseudo-terminal) or any pyserial URL (`socket://host:port`,
`rfc2217://…`). Opening and closing happen in a worker thread (pyserial-asyncio-fast), so a slow
USB enumeration never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from types import TracebackType

import serial
import serial_asyncio_fast

from drivers.errors import ReaderDisconnected, ReaderTimeout
from drivers.types import LinkHealth

logger = logging.getLogger(__name__)


class SerialTransport:
    """One serial link, used as `async with SerialTransport(url, baud) as link:`.

    Args:
        url: device path or pyserial URL.
        baudrate: line speed (ignored by pseudo-terminals).
        name: the device's configured name, used in health reports and logs.
    """

    def __init__(self, url: str, baudrate: int = 9600, *, name: str = "serial") -> None:
        self.url = url
        self.baudrate = baudrate
        self.name = name
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._health = LinkHealth(name=name, connected=False, since=time.monotonic())

    @property
    def health(self) -> LinkHealth:
        """Whether the port is open now and since when."""
        return self._health

    def _set_health(self, connected: bool, error: str | None = None) -> None:
        if connected != self._health.connected or error != self._health.last_error:
            self._health = LinkHealth(self.name, connected, time.monotonic(), error)

    async def __aenter__(self) -> SerialTransport:
        if self._writer is not None:
            raise RuntimeError("SerialTransport is not reentrant")
        try:
            self._reader, self._writer = await serial_asyncio_fast.open_serial_connection(
                url=self.url, baudrate=self.baudrate
            )
        except (serial.SerialException, OSError, ValueError) as err:
            self._reader = self._writer = None
            self._set_health(False, f"open failed: {err}")
            raise ReaderDisconnected(f"{self.name}: cannot open {self.url}: {err}") from err
        self._set_health(True)
        logger.info("%s: opened %s at %d Bd", self.name, self.url, self.baudrate)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), 2.0)
            except (TimeoutError, OSError, serial.SerialException) as err:
                logger.warning("%s: forced close of %s: %s", self.name, self.url, err)
        if self._health.connected:
            self._set_health(False, str(exc) if exc else None)

    def _stream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            raise ReaderDisconnected(f"{self.name}: port {self.url} is not open")
        return self._reader, self._writer

    async def read(self, max_bytes: int = 256, timeout: float | None = None) -> bytes:
        """Return the next bytes available (at least one).

        Raises:
            ReaderDisconnected: the device vanished (end of stream or an I/O error).
            ReaderTimeout: nothing arrived within `timeout` seconds.
        """
        reader, _ = self._stream()
        try:
            async with asyncio.timeout(timeout):
                data = await reader.read(max_bytes)
        except TimeoutError as err:
            raise ReaderTimeout(f"{self.name}: no data for {timeout} s") from err
        except (serial.SerialException, OSError) as err:
            self._set_health(False, str(err))
            raise ReaderDisconnected(f"{self.name}: {err}") from err
        if not data:
            self._set_health(False, "end of stream")
            raise ReaderDisconnected(f"{self.name}: device at {self.url} went away")
        return data

    @property
    def is_open(self) -> bool:
        """Whether the port is open (entered and not closed)."""
        return self._writer is not None

    def set_baudrate(self, baudrate: int) -> None:
        """Change the line speed of the open port (used by readers that probe for their baud).

        Raises:
            ReaderDisconnected: the port is closed or the device refused the setting.
        """
        _, writer = self._stream()
        port = writer.transport.get_extra_info("serial")
        try:
            port.baudrate = baudrate
        except (serial.SerialException, OSError, ValueError) as err:
            self._set_health(False, str(err))
            raise ReaderDisconnected(f"{self.name}: cannot set {baudrate} Bd: {err}") from err
        self.baudrate = baudrate
        logger.info("%s: switched %s to %d Bd", self.name, self.url, baudrate)

    async def discard_input(self, quiet: float = 0.002) -> int:
        """Drop bytes already received (a late reply must not answer the next command).

        Args:
            quiet: how long the line must stay silent to count as drained.

        Returns:
            The number of bytes dropped.
        """
        dropped = 0
        while True:
            try:
                dropped += len(await self.read(4096, timeout=quiet))
            except ReaderTimeout:
                return dropped

    async def write(self, data: bytes) -> None:
        """Send bytes and wait until they are handed to the OS."""
        _, writer = self._stream()
        try:
            writer.write(data)
            await writer.drain()
        except (serial.SerialException, OSError) as err:
            self._set_health(False, str(err))
            raise ReaderDisconnected(f"{self.name}: {err}") from err
