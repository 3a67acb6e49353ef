"""A pseudo-terminal pair standing in for a USB-serial reader.

The device side (master) is written by the simulator; the host side (slave) is what pyserial opens.
A stable symlink plays the part of a udev `/dev/serial/by-id/…` name, so the device can vanish
and come back under the same path as a re-plugged USB reader does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import termios
import tty
import weakref
from pathlib import Path
from typing import ClassVar, Self


class PtyDevice:
    """The device end of a pseudo-terminal, with faults a real cable produces.

    Args:
        link: path of the stable symlink to create (its parent must exist).
    """

    _plugged: ClassVar[weakref.WeakSet[PtyDevice]] = weakref.WeakSet()

    def __init__(self, link: Path) -> None:
        self.link = link
        self._master: int | None = None
        self._slave: int | None = None

    @classmethod
    def unplug_all(cls) -> None:
        """Unplug every device still plugged in (test teardown: no pty outlives its test)."""
        for device in list(cls._plugged):
            device.unplug()

    @property
    def port(self) -> str:
        """The path a reader driver should open."""
        return str(self.link)

    @property
    def present(self) -> bool:
        """Whether the device is plugged in."""
        return self._master is not None

    def plug(self) -> None:
        """Create the pseudo-terminal and point the symlink at it."""
        if self._master is not None:
            return
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        tmp = self.link.with_name(self.link.name + ".new")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(os.ttyname(slave))
        tmp.replace(self.link)
        PtyDevice._plugged.add(self)

    def unplug(self) -> None:
        """Make the device vanish: the host side sees an I/O error or end of stream."""
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None
        PtyDevice._plugged.discard(self)

    def write_now(self, data: bytes) -> None:
        """Write bytes to the host immediately (a pty ignores the baud rate)."""
        if self._master is None:
            raise RuntimeError("device is unplugged")
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._master, view)
            except BlockingIOError:
                continue
            view = view[written:]

    async def write(self, data: bytes, *, chunk: int = 0, gap: float = 0.0) -> None:
        """Write bytes, optionally split into `chunk`-byte pieces `gap` seconds apart."""
        if chunk <= 0:
            self.write_now(data)
            return
        for i in range(0, len(data), chunk):
            self.write_now(data[i : i + chunk])
            await asyncio.sleep(gap)

    def read_available(self) -> bytes:
        """Bytes the host sent to the device so far (for command/response devices)."""
        if self._master is None:
            return b""
        try:
            return os.read(self._master, 4096)
        except (BlockingIOError, OSError):
            return b""

    async def receive(self, poll: float = 0.001) -> bytes:
        """Wait until the host sent something and return it (polling: survives unplug/plug)."""
        while True:
            data = self.read_available()
            if data:
                return data
            await asyncio.sleep(poll)

    def line_baudrate(self) -> int | None:
        """The speed the host configured on the port (a pty stores it even though it ignores it).

        Returns:
            The baud rate, or None when unplugged or not a standard rate.
        """
        if self._master is None:
            return None
        speed = termios.tcgetattr(self._master)[5]
        return _SPEEDS.get(speed)

    def __enter__(self) -> Self:
        self.plug()
        return self

    def __exit__(self, *exc: object) -> None:
        self.unplug()


_SPEEDS = {
    getattr(termios, f"B{rate}"): rate
    for rate in (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800)
}
