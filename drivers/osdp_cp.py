"""OSDP v2 readers, with doorgate as the control panel (CP), through libosdp (protocols §2).

libosdp does the framing, CRC, sequence numbers and secure channel in C; we supply the serial
channel (`SerialChannel`, an `osdp.Channel` over pyserial) and bridge its callback thread to
asyncio. The stock Python wrapper refreshes every 20 ms + 50 ms; a card read then takes ~70 ms to
arrive, so `_FastControlPanel` refreshes every `REFRESH` seconds instead (≈ 23 ms measured at 1 ms).

Not named `osdp.py`: that would shadow the `osdp` import of libosdp.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import termios
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import osdp
import serial

from drivers.errors import DriverError, FrameError, ReaderDisconnected, ReaderTimeout
from drivers.types import CardRead, CardTech, KeyPress
from drivers.wiegand import WiegandCard, decode_bits

logger = logging.getLogger(__name__)

REFRESH = 0.002
# pyserial raises termios.error (not an OSError) from tcflush on a vanished tty.
_PORT_ERRORS = (serial.SerialException, OSError, TypeError, termios.error)
SCBK_LEN = 16
# osdp_KEYPAD sends digits as ASCII, `*` as 0x7F and `#` as 0x0D (protocols §2.4).
_KEYPAD = {0x7F: "*", 0x0D: "#"} | {ord(d): d for d in "0123456789"}


def load_scbk(path: Path) -> bytes:
    """Read a 16-byte secure channel base key: 32 hex digits (whitespace ignored) or 16 raw bytes.

    Raises:
        DriverError: the file is missing or does not hold exactly one 16-byte key.
    """
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DriverError(f"cannot read OSDP SCBK file {path}: {err}") from err
    if len(raw) == SCBK_LEN:
        return raw
    try:
        key = bytes.fromhex(raw.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError) as err:
        raise DriverError(f"OSDP SCBK file {path} is neither 16 bytes nor hex") from err
    if len(key) != SCBK_LEN:
        raise DriverError(f"OSDP SCBK in {path} has {len(key)} bytes, expected 16")
    return key


def _fast_refresh(event: threading.Event, lock: threading.Lock, ctx: Any) -> None:
    while not event.is_set():
        with lock:
            ctx.refresh()
        event.wait(REFRESH)


class _FastControlPanel(osdp.ControlPanel):  # type: ignore[misc]
    refresh = staticmethod(_fast_refresh)


class SerialChannel(osdp.Channel):  # type: ignore[misc]
    """An `osdp.Channel` over a pyserial port (non-blocking: libosdp polls it).

    Args:
        url: device path or pyserial URL.
        baudrate: line speed; both ends of an OSDP bus must agree (default 9600).

    Attributes:
        error: the first I/O error seen (libosdp cannot carry exceptions across its C layer).
    """

    def __init__(self, url: str, baudrate: int = 9600) -> None:
        super().__init__()
        self.error: str | None = None
        try:
            self.port = serial.serial_for_url(url, baudrate=baudrate, timeout=0)
        except (serial.SerialException, OSError, ValueError) as err:
            raise ReaderDisconnected(f"cannot open OSDP port {url}: {err}") from err

    def read(self, max_bytes: int) -> bytes:
        """Return what is available now (possibly nothing)."""
        try:
            return bytes(self.port.read(max_bytes))
        except _PORT_ERRORS as err:
            self.error = self.error or str(err)
            return b""

    def write(self, buf: bytes) -> int:
        """Send `buf`; report 0 bytes sent after an I/O error."""
        try:
            return int(self.port.write(buf) or 0)
        except _PORT_ERRORS as err:
            self.error = self.error or str(err)
            return 0

    def flush(self) -> None:
        """Drop unread input (libosdp flushes before each send: RS-485 echo)."""
        with contextlib.suppress(*_PORT_ERRORS):
            self.port.reset_input_buffer()

    def close(self) -> None:
        """Close the port."""
        with contextlib.suppress(serial.SerialException, OSError):
            self.port.close()


def unpack_card(data: bytes, bits: int) -> tuple[bytes, dict[str, int | str]]:
    """Turn an osdp_RAW payload (bits MSB first, left-justified) into a UID and details.

    26/34-bit Wiegand data is parity-checked and reduced to its data bits, the same identity a
    GPIO Wiegand reader yields for the card; other lengths are kept as raw bytes.

    Raises:
        FrameError: a 26/34-bit frame with bad parity, or fewer data bytes than bits.
    """
    if len(data) * 8 < bits:
        raise FrameError(f"OSDP card data has {len(data)} bytes for {bits} bits", data)
    bit_text = f"{int.from_bytes(data, 'big'):0{len(data) * 8}b}"[:bits] if data else ""
    if bits in (26, 34):
        card = decode_bits(bit_text)
        if isinstance(card, WiegandCard):
            return card.uid, {"bits": bits, "facility": card.facility, "number": card.number}
    return bytes(data), {"bits": bits}


def decode_keys(data: bytes) -> str:
    """Keypad bytes to keys (`0-9`, `*`, `#`); unknown codes become `?`."""
    return "".join(_KEYPAD.get(b, "?") for b in data)


class OsdpReader:
    """One OSDP peripheral device (a reader) polled by doorgate as control panel.

    Use as `async with OsdpReader(port, scbk=key) as reader: async for r in reader.reads():`.

    Args:
        port: device path or pyserial URL of the RS-485 adapter.
        address: the PD address (0-126).
        baudrate: bus speed.
        scbk: the PD's 16-byte secure channel base key (see `load_scbk`); None = plain text.
        name: the configured reader name.
        online_timeout: how long entering waits for the PD (and its secure channel).
        offline_after: how long the PD may stay offline before `reads()` gives up.
    """

    def __init__(
        self,
        port: str,
        *,
        address: int = 0,
        baudrate: int = 9600,
        scbk: bytes | None = None,
        name: str = "osdp",
        online_timeout: float = 3.0,
        offline_after: float = 2.0,
    ) -> None:
        if scbk is not None and len(scbk) != SCBK_LEN:
            raise ValueError("an OSDP SCBK is 16 bytes")
        self.port = port
        self.address = address
        self.baudrate = baudrate
        self.scbk = scbk
        self._name = name
        self.online_timeout = online_timeout
        self.offline_after = offline_after
        self._cp: Any = None
        self._channel: SerialChannel | None = None
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    @property
    def name(self) -> str:
        """The configured reader name."""
        return self._name

    @property
    def online(self) -> bool:
        """Whether libosdp sees the PD answering polls."""
        return self._cp is not None and bool(self._cp.is_online(self.address))

    @property
    def secure(self) -> bool:
        """Whether the secure channel is established."""
        return self._cp is not None and bool(self._cp.is_sc_active(self.address))

    async def __aenter__(self) -> Self:
        if self._cp is not None:
            raise RuntimeError("OsdpReader is not reentrant")
        loop = asyncio.get_running_loop()
        self._channel = await asyncio.to_thread(SerialChannel, self.port, self.baudrate)
        flags = [osdp.LibFlag.EnforceSecure] if self.scbk else []
        info = osdp.PDInfo(self.address, self._channel, scbk=self.scbk, name=self.name, flags=flags)

        def on_event(_pd: int, event: dict[str, Any]) -> int:  # runs in libosdp's thread
            loop.call_soon_threadsafe(self._queue.put_nowait, event)
            return 0

        self._cp = _FastControlPanel([info], log_level=osdp.LogLevel.Error, event_handler=on_event)
        self._cp.start()
        try:
            await self._wait_online()
        except BaseException:
            await self._close()
            raise
        return self

    async def _wait_online(self) -> None:
        deadline = time.monotonic() + self.online_timeout
        while not (self.online and (self.scbk is None or self.secure)):
            self._check_channel()
            if time.monotonic() > deadline:
                hint = " (is the SCBK right?)" if self.scbk else ""
                raise ReaderTimeout(
                    f"{self.name}: OSDP PD {self.address} not up in {self.online_timeout} s{hint}"
                )
            await asyncio.sleep(0.01)
        logger.info("%s: OSDP PD %d online (secure: %s)", self.name, self.address, self.secure)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        cp, self._cp = self._cp, None
        if cp is not None:
            await asyncio.to_thread(cp.stop)
        channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()

    def _check_channel(self) -> None:
        if self._channel is not None and self._channel.error:
            raise ReaderDisconnected(f"{self.name}: OSDP port failed: {self._channel.error}")

    async def reads(self) -> AsyncIterator[CardRead | KeyPress]:
        """Yield card reads and key presses; raise `ReaderDisconnected` if the PD stays away."""
        offline_since: float | None = None
        while True:
            try:
                event = await asyncio.wait_for(self._queue.get(), 0.1)
            except TimeoutError:
                self._check_channel()
                offline_since = None if self.online else (offline_since or time.monotonic())
                if offline_since and time.monotonic() - offline_since > self.offline_after:
                    raise ReaderDisconnected(f"{self.name}: OSDP PD went offline") from None
                continue
            record = self._translate(event, time.monotonic())
            if record is not None:
                yield record

    def _translate(self, event: dict[str, Any], now: float) -> CardRead | KeyPress | None:
        kind = event.get("event")
        if kind == osdp.Event.KeyPress:
            return KeyPress(self.name, decode_keys(bytes(event.get("data", b""))), now)
        if kind != osdp.Event.CardRead:
            return None
        data = bytes(event.get("data", b""))
        bits = int(event.get("length", len(data) * 8))
        try:
            uid, extra = unpack_card(data, bits)
        except FrameError as err:
            logger.warning("%s: dropped OSDP card read: %s", self.name, err)
            return None
        return CardRead(self.name, CardTech.OSDP, uid, now, extra | {"format": event["format"]})

    async def feedback(self, allowed: bool, *, seconds: float = 2.0) -> bool:
        """Flash the reader LED green (allowed) or red (denied) and beep once or three times.

        Returns:
            Whether libosdp accepted both commands for sending.
        """
        if self._cp is None:
            raise ReaderDisconnected(f"{self.name}: OSDP reader is not open")
        color = osdp.CommandLEDColor.Green if allowed else osdp.CommandLEDColor.Red
        ticks = max(1, round(seconds * 10))  # OSDP times are in 100 ms units
        led = {
            "command": osdp.Command.LED, "reader": 0, "led_number": 0, "temporary": True,
            "control_code": 2, "on_count": 5, "off_count": 0, "on_color": color,
            "off_color": osdp.CommandLEDColor.Black, "timer_count": ticks,
        }  # fmt: skip
        buzzer = {
            "command": osdp.Command.Buzzer, "reader": 0, "control_code": 2,
            "on_count": 2 if allowed else 1, "off_count": 1, "rep_count": 1 if allowed else 3,
        }  # fmt: skip
        sent = [self._cp.submit_command(self.address, cmd) for cmd in (led, buzzer)]
        return all(sent)
