"""Wiegand 26/34 readers on two GPIO lines (protocols §3), plus 4/8-bit keypad bursts.

D0 and D1 idle high; a falling edge on D0 is a `0` bit, on D1 a `1` bit. A frame ends when no
edge arrived for `gap` seconds (~25 ms: datasheets promise > 50 ms between frames, bits come every
1-2.4 ms). Edges carry kernel timestamps (gpiod), so frames are cut on those timestamps even when
Python wakes up late, and a read only waits in real time for the final gap.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any, Protocol, Self

from drivers.errors import DriverError, FrameError, ReaderDisconnected
from drivers.rdm6300 import Debouncer
from drivers.types import CardRead, CardTech, KeyPress

logger = logging.getLogger(__name__)

FRAME_GAP = 0.025
KEYS = "0123456789*#"


class Line(enum.IntEnum):
    """The two data lines."""

    D0 = 0
    D1 = 1


@dataclass(frozen=True, slots=True)
class EdgeEvent:
    """A falling edge (start of a bit pulse) on one line, with a monotonic timestamp in ns."""

    line: Line
    timestamp_ns: int


@dataclass(frozen=True, slots=True)
class WiegandCard:
    """A decoded 26- or 34-bit card frame.

    Attributes:
        bits: bit count (26 or 34).
        data: the data bits without the two parity bits (24 or 32 bits).
        facility: facility code (W26: 8 bits; W34: the upper 16 bits, H10306 style).
        number: card number (the lower 16 bits).
    """

    bits: int
    data: int

    @property
    def facility(self) -> int:
        """Facility/site code."""
        return self.data >> 16

    @property
    def number(self) -> int:
        """Card number within the facility."""
        return self.data & 0xFFFF

    @property
    def uid(self) -> bytes:
        """The data bits as bytes (3 for W26, 4 for W34): the identity doorgate hashes."""
        return self.data.to_bytes((self.bits - 2) // 8, "big")


def _parity_ok(bits: str) -> bool:
    half = len(bits) // 2
    return bits[:half].count("1") % 2 == 0 and bits[half:].count("1") % 2 == 1


def decode_bits(bits: str) -> WiegandCard | str:
    """Decode one frame given as a string of `0`/`1` in transmission order.

    Returns:
        A `WiegandCard` for 26/34 bits, or the key (`0-9`, `*`, `#`) of a 4/8-bit keypad burst.

    Raises:
        FrameError: wrong length, parity error, or an invalid keypad code.
    """
    if set(bits) - {"0", "1"}:
        raise FrameError("Wiegand bits must be 0 or 1", bits.encode(errors="replace"))
    n = len(bits)
    if n in (26, 34):
        if not _parity_ok(bits):
            raise FrameError(f"Wiegand {n}: parity error", bits.encode())
        return WiegandCard(n, int(bits[1:-1], 2))
    if n == 4:
        return _key(int(bits, 2), bits)
    if n == 8:
        value = int(bits, 2)
        if (value ^ 0xF0) >> 4 != value & 0x0F:
            raise FrameError("Wiegand 8-bit key: high nibble is not the complement", bits.encode())
        return _key(value & 0x0F, bits)
    raise FrameError(
        f"Wiegand frame of {n} bits (expected 26 or 34, or a 4/8-bit key)", bits.encode()
    )


def _key(value: int, bits: str) -> str:
    if value >= len(KEYS):
        raise FrameError(f"Wiegand keypad code {value} is not a key", bits.encode())
    return KEYS[value]


def _with_parity(data_bits: str) -> str:
    half = len(data_bits) // 2
    even = str(data_bits[:half].count("1") % 2)
    odd = str(1 - data_bits[half:].count("1") % 2)
    return even + data_bits + odd


def encode_w26(facility: int, number: int) -> str:
    """The 26 bits of an H10301 card (facility 0-255, number 0-65535)."""
    if not (0 <= facility <= 0xFF and 0 <= number <= 0xFFFF):
        raise ValueError("W26 needs facility 0-255 and number 0-65535")
    return _with_parity(f"{facility:08b}{number:016b}")


def encode_w34(data: int) -> str:
    """The 34 bits of a W34 frame carrying 32 data bits."""
    if not 0 <= data <= 0xFFFF_FFFF:
        raise ValueError("W34 carries 32 data bits")
    return _with_parity(f"{data:032b}")


def encode_key(key: str, *, bits: int = 4) -> str:
    """A keypad burst: 4 bits, or 8 bits with the complemented high nibble."""
    value = KEYS.index(key)
    return f"{value:04b}" if bits == 4 else f"{(~value & 0xF):04b}{value:04b}"


class FrameAssembler:
    """Groups edges into frames: a frame ends at a gap of `gap` seconds without edges."""

    def __init__(self, gap: float = FRAME_GAP) -> None:
        self.gap_ns = int(gap * 1e9)
        self._bits: list[str] = []
        self._last_ns: int | None = None

    def feed(self, edge: EdgeEvent) -> str | None:
        """Add one edge; return the previous frame's bits if this edge starts a new frame."""
        done = None
        if self._last_ns is not None and edge.timestamp_ns - self._last_ns > self.gap_ns:
            done = self.flush()
        self._bits.append("1" if edge.line is Line.D1 else "0")
        self._last_ns = edge.timestamp_ns
        return done

    def flush(self) -> str | None:
        """End the current frame (the line went quiet); return its bits, if any."""
        bits, self._bits, self._last_ns = "".join(self._bits), [], None
        return bits or None


class EdgeSource(Protocol):
    """Where edges come from: `GpiodEdgeSource` on a Pi, `SimulatedEdgeSource` in tests."""

    name: str

    async def __aenter__(self) -> Self:
        """Claim the lines."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Release the lines."""
        ...

    async def wait_edges(self, timeout: float) -> Sequence[EdgeEvent]:
        """Return the edges queued so far, waiting up to `timeout` s for one (empty if none)."""
        ...


class WiegandReader:
    """A Wiegand reader: yields a `CardRead` per card and a `KeyPress` per keypad key.

    Bad frames (parity, length, noise) are logged and dropped; reading continues.

    Args:
        source: the edge source (entered by the reader).
        gap: silence that ends a frame.
        debounce: seconds the same card must be absent before it is reported again (readers
            often repeat the frame while a card stays in the field).

    Attributes:
        rejected: count of frames dropped as invalid.
    """

    def __init__(
        self, source: EdgeSource, *, gap: float = FRAME_GAP, debounce: float = 1.0
    ) -> None:
        self.source = source
        self.gap = gap
        self.rejected = 0
        self._assembler = FrameAssembler(gap)
        self._debouncer = Debouncer(debounce)

    @property
    def name(self) -> str:
        """The configured reader name."""
        return self.source.name

    async def __aenter__(self) -> Self:
        await self.source.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.source.__aexit__(exc_type, exc, tb)

    async def reads(self) -> AsyncIterator[CardRead | KeyPress]:
        """Yield cards and keys as their frames complete."""
        while True:
            edges = await self.source.wait_edges(self.gap)
            frames = [bits for edge in edges if (bits := self._assembler.feed(edge))]
            if not edges and (bits := self._assembler.flush()):
                frames.append(bits)
            for bits in frames:
                record = self._decode(bits, time.monotonic())
                if record is not None:
                    yield record

    def _decode(self, bits: str, now: float) -> CardRead | KeyPress | None:
        try:
            decoded = decode_bits(bits)
        except FrameError as err:
            self.rejected += 1
            logger.warning("%s: dropped Wiegand frame: %s", self.name, err)
            return None
        if isinstance(decoded, str):
            return KeyPress(self.name, decoded, now)
        if not self._debouncer.is_new(decoded.uid, now):
            return None
        extra: dict[str, int | str] = {
            "bits": decoded.bits, "facility": decoded.facility, "number": decoded.number,
        }  # fmt: skip
        return CardRead(self.name, CardTech.WIEGAND, decoded.uid, now, extra)


class GpiodEdgeSource:
    """Falling edges of D0/D1 through libgpiod v2 (kernel-timestamped, nothing lost if late).

    Not exercised by the test suite (no GPIO chip here); it is kept thin on purpose.

    Args:
        chip: the gpiochip path (`/dev/gpiochip0`; on early Pi 5 kernels `/dev/gpiochip4`).
        d0: line offset of D0.
        d1: line offset of D1.
        name: the configured reader name.
    """

    def __init__(self, chip: str, d0: int, d1: int, *, name: str = "wiegand") -> None:
        self.chip = chip
        self.offsets = {d0: Line.D0, d1: Line.D1}
        self.name = name
        self._request: Any = None

    async def __aenter__(self) -> Self:
        import gpiod
        from gpiod.line import Bias, Edge

        settings = gpiod.LineSettings(edge_detection=Edge.FALLING, bias=Bias.PULL_UP)
        try:
            self._request = await asyncio.to_thread(
                gpiod.request_lines, self.chip, {tuple(self.offsets): settings}, "doorgate-wiegand"
            )
        except OSError as err:
            raise ReaderDisconnected(f"{self.name}: cannot claim {self.chip}: {err}") from err
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        request, self._request = self._request, None
        if request is not None:
            request.release()

    def _wait(self, timeout: float) -> list[EdgeEvent]:
        if not self._request.wait_edge_events(timedelta(seconds=timeout)):
            return []
        return [
            EdgeEvent(self.offsets[event.line_offset], event.timestamp_ns)
            for event in self._request.read_edge_events()
        ]

    async def wait_edges(self, timeout: float) -> Sequence[EdgeEvent]:
        """Wait in a worker thread for edges (the kernel queues them with timestamps)."""
        if self._request is None:
            raise ReaderDisconnected(f"{self.name}: GPIO lines are not claimed")
        try:
            return await asyncio.to_thread(self._wait, timeout)
        except OSError as err:
            raise DriverError(f"{self.name}: GPIO edge read failed: {err}") from err
