"""A simulated Wiegand edge source: D0/D1 pulses with realistic timing, noise and short frames.

Edges are queued with timestamps as the kernel would stamp them (gpiod), one bit every `period`
seconds and frames at least `frame_gap` apart, so the reader's gap-based framing sees exactly what
it sees on a Pi, without depending on how fast the test's event loop runs.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Self

from drivers.errors import ReaderDisconnected
from drivers.wiegand import EdgeEvent, Line, encode_key, encode_w26, encode_w34


class SimulatedEdgeSource:
    """Stands in for `GpiodEdgeSource` (same `EdgeSource` protocol).

    Args:
        name: the configured reader name.
        period: seconds between bits (datasheets: 1-2.4 ms).
        frame_gap: minimum silence between frames (datasheets: > 50 ms).

    Attributes:
        opened: how many times the lines were claimed.
    """

    def __init__(self, name: str = "wiegand", *, period: float = 0.002, frame_gap: float = 0.06):
        self.name = name
        self.period_ns = int(period * 1e9)
        self.frame_gap_ns = int(frame_gap * 1e9)
        self.opened = 0
        self._edges: list[EdgeEvent] = []
        self._ready = asyncio.Event()
        self._next_ns = 0
        self._claimed = False
        self._broken = False

    async def __aenter__(self) -> Self:
        if self._broken:
            raise ReaderDisconnected(f"{self.name}: GPIO chip is gone")
        self._claimed = True
        self.opened += 1
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._claimed = False

    def break_chip(self, broken: bool = True) -> None:
        """Make the GPIO chip fail (as if the reader's HAT lost power) or recover."""
        self._broken = broken
        self._ready.set()

    async def wait_edges(self, timeout: float) -> Sequence[EdgeEvent]:
        """Return queued edges, waiting up to `timeout` seconds for the first."""
        if self._broken or not self._claimed:
            raise ReaderDisconnected(f"{self.name}: GPIO lines are not available")
        if not self._edges:
            try:
                async with asyncio.timeout(timeout):
                    await self._ready.wait()
            except TimeoutError:
                return []
        edges, self._edges = self._edges, []
        self._ready.clear()
        return edges

    def _queue(self, stamped: list[EdgeEvent]) -> None:
        self._edges += stamped
        self._ready.set()

    def send_bits(self, bits: str) -> None:
        """Queue one frame: a falling edge on D1 for each `1`, on D0 for each `0`."""
        start = max(time.monotonic_ns(), self._next_ns)
        stamped = [
            EdgeEvent(Line.D1 if bit == "1" else Line.D0, start + i * self.period_ns)
            for i, bit in enumerate(bits)
        ]
        self._next_ns = start + len(bits) * self.period_ns + self.frame_gap_ns
        self._queue(stamped)

    async def send_bits_live(self, bits: str) -> None:
        """Send a frame in real time: each edge is queued when its pulse happens."""
        for bit in bits:
            self._queue([EdgeEvent(Line.D1 if bit == "1" else Line.D0, time.monotonic_ns())])
            await asyncio.sleep(self.period_ns / 1e9)
        self._next_ns = time.monotonic_ns() + self.frame_gap_ns

    def send_w26(self, facility: int, number: int) -> None:
        """Present an H10301 card."""
        self.send_bits(encode_w26(facility, number))

    def send_w34(self, data: int) -> None:
        """Present a 32-bit card as W34."""
        self.send_bits(encode_w34(data))

    def send_keys(self, keys: str, *, bits: int = 4) -> None:
        """Type keys, one burst per key."""
        for key in keys:
            self.send_bits(encode_key(key, bits=bits))

    def send_short(self, bits: str, keep: int) -> None:
        """Send only the first `keep` bits of a frame (reader glitch, loose wire)."""
        self.send_bits(bits[:keep])

    def inject_noise(self, count: int = 3, *, seed: int | None = None) -> None:
        """Queue `count` spurious edges within a few hundred microseconds (EMI on the cable)."""
        rng = random.Random(seed)
        start = max(time.monotonic_ns(), self._next_ns)
        stamped = [EdgeEvent(rng.choice(list(Line)), start + i * 100_000) for i in range(count)]
        self._next_ns = start + count * 100_000 + self.frame_gap_ns
        self._queue(stamped)
