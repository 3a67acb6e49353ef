"""RDM6300 125 kHz EM4100 reader (UART, 9600 8N1, transmit-only).

Frame (protocols §4): STX, 10 ASCII hex chars (version byte + 32-bit tag), 2 ASCII hex chars
checksum (XOR of the 5 data bytes), ETX. The module repeats the frame every ~0.1-0.2 s while a tag
stays in the field, so reads of the same tag are debounced until it has been gone for a while.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import reduce
from operator import xor
from types import TracebackType
from typing import Self

from drivers.errors import FrameError
from drivers.serial_transport import SerialTransport
from drivers.types import CardRead, CardTech

logger = logging.getLogger(__name__)

STX = 0x02
ETX = 0x03
FRAME_LEN = 14
BAUDRATE = 9600
_HEX = frozenset(b"0123456789ABCDEFabcdef")


@dataclass(frozen=True, slots=True)
class Em4100Tag:
    """A decoded EM4100 frame: version (customer) byte and 32-bit tag serial."""

    version: int
    serial: int

    @property
    def uid(self) -> bytes:
        """The five data bytes, version first: the identity doorgate hashes."""
        return bytes([self.version]) + self.serial.to_bytes(4, "big")


def encode_frame(version: int, serial: int) -> bytes:
    """Build the exact 14 bytes an RDM6300 sends for a tag."""
    data = bytes([version]) + serial.to_bytes(4, "big")
    checksum = reduce(xor, data)
    return bytes([STX]) + data.hex().upper().encode() + f"{checksum:02X}".encode() + bytes([ETX])


def parse_frame(frame: bytes) -> Em4100Tag:
    """Decode one 14-byte frame.

    Raises:
        FrameError: wrong length, framing bytes, non-hex characters or checksum.
    """
    if len(frame) != FRAME_LEN:
        raise FrameError(f"RDM6300 frame must be {FRAME_LEN} bytes, got {len(frame)}", frame)
    if frame[0] != STX or frame[-1] != ETX:
        raise FrameError("RDM6300 frame must start with STX (02) and end with ETX (03)", frame)
    body = frame[1:13]
    if not set(body) <= _HEX:
        raise FrameError("RDM6300 frame holds non-hex characters", frame)
    data = bytes.fromhex(body[:10].decode("ascii"))
    expected = int(body[10:12], 16)
    actual = reduce(xor, data)
    if actual != expected:
        raise FrameError(f"RDM6300 checksum {expected:02X} != XOR of data {actual:02X}", frame)
    return Em4100Tag(version=data[0], serial=int.from_bytes(data[1:], "big"))


class FrameSplitter:
    """Reassembles frames from arbitrary chunks and resynchronises on STX after garbage.

    Attributes:
        rejected: count of byte runs discarded as garbage or bad frames (for health reports).
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.rejected = 0

    def feed(self, chunk: bytes) -> list[Em4100Tag]:
        """Add bytes from the line; return every valid tag completed by them."""
        self._buf += chunk
        tags: list[Em4100Tag] = []
        while True:
            start = self._buf.find(STX)
            if start < 0:
                self._discard(len(self._buf))
                return tags
            self._discard(start)
            if len(self._buf) < FRAME_LEN:
                return tags
            tag = self._take_frame()
            if tag is not None:
                tags.append(tag)

    def _discard(self, count: int) -> None:
        if count:
            self.rejected += 1
            del self._buf[:count]

    def _take_frame(self) -> Em4100Tag | None:
        candidate = bytes(self._buf[:FRAME_LEN])
        try:
            tag = parse_frame(candidate)
        except FrameError as err:
            logger.debug("rdm6300: dropped bad frame: %s", err)
            # Skip only the STX: the real frame may start inside the garbage we just tried.
            self._discard(1)
            return None
        del self._buf[:FRAME_LEN]
        return tag


class Debouncer:
    """Reports a tag once per presentation: again only after `gap` s without seeing it."""

    def __init__(self, gap: float = 0.5) -> None:
        self.gap = gap
        self._last_seen: dict[bytes, float] = {}

    def is_new(self, uid: bytes, now: float) -> bool:
        """Record a sighting of `uid` at `now`; True when it starts a new presentation."""
        last = self._last_seen.get(uid)
        self._last_seen[uid] = now
        for stale in [k for k, t in self._last_seen.items() if now - t > self.gap * 4]:
            del self._last_seen[stale]
        return last is None or now - last > self.gap


class Rdm6300Reader:
    """The RDM6300 as a card reader: yields one `CardRead` per tag presentation.

    Use as `async with Rdm6300Reader(transport) as reader:` (entering the reader opens the
    transport), or enter the transport yourself and only call `reads()`.

    Args:
        transport: an open-able serial transport.
        debounce: seconds without frames after which the same tag counts as presented again.
    """

    def __init__(self, transport: SerialTransport, *, debounce: float = 0.5) -> None:
        self.transport = transport
        self._splitter = FrameSplitter()
        self._debouncer = Debouncer(debounce)

    @property
    def name(self) -> str:
        """The configured reader name."""
        return self.transport.name

    async def __aenter__(self) -> Self:
        await self.transport.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.transport.__aexit__(exc_type, exc, tb)

    @property
    def rejected_frames(self) -> int:
        """How many garbage runs or bad frames were discarded so far."""
        return self._splitter.rejected

    async def reads(self) -> AsyncIterator[CardRead]:
        """Yield card reads until the device disconnects (then `ReaderDisconnected` propagates)."""
        while True:
            chunk = await self.transport.read()
            now = time.monotonic()
            for tag in self._splitter.feed(chunk):
                if self._debouncer.is_new(tag.uid, now):
                    yield CardRead(
                        self.name, CardTech.EM4100, tag.uid, now, {"version": tag.version}
                    )
