"""An OSDP reader for tests and the demo: libosdp's own PeripheralDevice on a pty.

The PD speaks real OSDP (CRC, sequence numbers, secure channel) through `FdChannel` on the pty's
device end, so the control panel under test meets the same bytes a field reader would send.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any

import osdp

from drivers.osdp_cp import REFRESH
from drivers.simulators.pty import PtyDevice


def _fast_refresh(event: threading.Event, lock: threading.Lock, ctx: Any) -> None:
    while not event.is_set():
        with lock:
            ctx.refresh()
        event.wait(REFRESH)


class _FastPeripheralDevice(osdp.PeripheralDevice):  # type: ignore[misc]
    refresh = staticmethod(_fast_refresh)


class FdChannel(osdp.Channel):  # type: ignore[misc]
    """An `osdp.Channel` over a non-blocking file descriptor (the pty's device end)."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd

    def read(self, max_bytes: int) -> bytes:
        """Return what is available now."""
        try:
            return os.read(self.fd, max_bytes)
        except OSError:
            return b""

    def write(self, buf: bytes) -> int:
        """Write what the pty accepts."""
        try:
            return os.write(self.fd, buf)
        except OSError:
            return 0

    def flush(self) -> None:
        """Nothing to flush on a pty."""


def pack_bits(bits: str) -> bytes:
    """Pack `0`/`1` text MSB first, left-justified, as osdp_RAW carries it."""
    padded = bits + "0" * (-len(bits) % 8)
    return int(padded, 2).to_bytes(len(padded) // 8, "big") if bits else b""


class OsdpPdSimulator(PtyDevice):
    """An OSDP reader (PD) on a pseudo-terminal.

    Args:
        link: stable path to expose as the serial port.
        address: the PD address.
        scbk: the secure channel base key (None: plain text).

    Attributes:
        commands: every command dict the PD received from the CP (LED, buzzer, output…).
    """

    def __init__(self, link: Path, *, address: int = 0, scbk: bytes | None = None) -> None:
        super().__init__(link)
        self.address = address
        self.scbk = scbk
        self.commands: list[dict[str, Any]] = []
        self._pd: Any = None

    def _on_command(self, command: dict[str, Any]) -> tuple[int, None]:
        self.commands.append(command)
        return 0, None

    def plug(self) -> None:
        """Create the pty and start the PD on it."""
        if self.present:
            return
        super().plug()
        assert self._master is not None
        info = osdp.PDInfo(self.address, FdChannel(self._master), scbk=self.scbk)
        caps = osdp.PDCapabilities([
            (osdp.Capability.LEDControl, 1, 1),
            (osdp.Capability.AudibleControl, 1, 1),
            (osdp.Capability.OutputControl, 1, 1),
            (osdp.Capability.CommunicationSecurity, 1, 1),
        ])  # fmt: skip
        self._pd = _FastPeripheralDevice(
            info, caps, log_level=osdp.LogLevel.Error, command_handler=self._on_command
        )
        self._pd.start()

    def unplug(self) -> None:
        """Stop the PD, then make the port vanish."""
        pd, self._pd = self._pd, None
        if pd is not None:
            with contextlib.suppress(RuntimeError):
                pd.stop()
        super().unplug()

    def _submit(self, event: dict[str, Any]) -> None:
        if self._pd is None:
            raise RuntimeError("PD is unplugged")
        self._pd.submit_event(event)

    def tap_bits(self, bits: str) -> None:
        """Report a raw Wiegand card read of `bits` (e.g. `encode_w26(90, 324)`)."""
        event = {
            "event": osdp.Event.CardRead, "reader_no": 0, "direction": 0,
            "format": osdp.CardFormat.Wiegand, "length": len(bits), "data": pack_bits(bits),
        }  # fmt: skip
        self._submit(event)

    def press(self, keys: str) -> None:
        """Report keypad keys (`*` and `#` encoded as OSDP does: 0x7F, 0x0D)."""
        codes = bytes({"*": 0x7F, "#": 0x0D}.get(k, ord(k)) for k in keys)
        self._submit({"event": osdp.Event.KeyPress, "reader_no": 0, "data": codes})

    def inject_garbage(self, data: bytes) -> None:
        """Put noise on the line (RS-485 reflections, a second talker)."""
        self.write_now(data)
