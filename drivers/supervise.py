"""Keep one reader running forever: reconnect with jittered backoff and report its health.

Every reader device (RDM6300, ID card, PN532, serial or GPIO Wiegand, OSDP) is an async context
manager with a `reads()` async iterator. `supervise_reader` opens a fresh device, forwards its
reads, and when the device vanishes (USB unplugged, reader stops answering) it retries with
`drivers.backoff.backoff_delay`. Health changes go to a callback so the gateway can raise
`reader_offline` only after `offline_after` seconds (a reader re-enumerating on USB for a second
must not page the station) and clear it when the reader is back.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, Protocol, Self, TypeVar

from drivers.backoff import backoff_delay
from drivers.errors import DriverError

logger = logging.getLogger(__name__)

R_co = TypeVar("R_co", covariant=True)
R = TypeVar("R")


class ReaderDevice(Protocol[R_co]):
    """What the supervisor needs from a reader: open/close and a stream of reads."""

    @property
    def name(self) -> str:
        """The configured reader name."""
        ...

    def reads(self) -> AsyncIterator[R_co]:
        """Yield reads until the device fails (raising a `DriverError`)."""
        ...

    async def __aenter__(self) -> Self:
        """Open the device."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the device."""
        ...


class ReaderState(enum.StrEnum):
    """Health of a supervised reader as the gateway sees it."""

    ONLINE = "online"
    RECONNECTING = "reconnecting"  # lost, but for less than `offline_after`: no alert yet
    OFFLINE = "offline"  # lost for at least `offline_after`: raise `reader_offline`


@dataclass(frozen=True, slots=True)
class ReaderHealth:
    """One health transition of a supervised reader.

    Attributes:
        name: the configured reader name.
        state: the new state.
        since: `time.monotonic()` when the reader entered this state (for OFFLINE: when it was
            lost, not when the alert threshold passed).
        last_error: a short text of the last failure, if any.
        attempts: failed reconnect attempts since the reader was last online.
    """

    name: str
    state: ReaderState
    since: float
    last_error: str | None = None
    attempts: int = 0


ReadCallback = Callable[[R], Awaitable[None] | None]
HealthCallback = Callable[[ReaderHealth], Awaitable[None] | None]


async def _call(callback: Callable[[R], Awaitable[None] | None], value: R) -> None:
    result = callback(value)
    if result is not None:
        await result


class _Supervisor(Generic[R]):
    def __init__(
        self,
        make_reader: Callable[[], ReaderDevice[R]],
        on_read: ReadCallback[R],
        on_health: HealthCallback,
        offline_after: float,
        backoff: Callable[[int], float],
    ) -> None:
        self.make_reader = make_reader
        self.on_read = on_read
        self.on_health = on_health
        self.offline_after = offline_after
        self.backoff = backoff
        self.name = "reader"
        self.state: ReaderState | None = None
        self.lost_at = time.monotonic()
        self.attempts = 0
        self.last_error: str | None = None

    async def _set_state(self, state: ReaderState, since: float) -> None:
        if state is self.state:
            return
        self.state = state
        health = ReaderHealth(self.name, state, since, self.last_error, self.attempts)
        if state is ReaderState.ONLINE:
            logger.info("%s: reader online", self.name)
        else:
            logger.warning("%s: reader %s: %s", self.name, state, self.last_error)
        await _call(self.on_health, health)

    async def run(self) -> None:
        while True:
            await self._session()
            await self._wait_before_retry()

    async def _session(self) -> None:
        device = self.make_reader()
        self.name = device.name
        try:
            async with device:
                self.attempts = 0
                self.last_error = None
                await self._set_state(ReaderState.ONLINE, time.monotonic())
                async for read in device.reads():
                    await _call(self.on_read, read)
        except DriverError as err:
            self.last_error = str(err)
        else:
            self.last_error = "reader stream ended"
        if self.state is not ReaderState.RECONNECTING and self.state is not ReaderState.OFFLINE:
            self.lost_at = time.monotonic()
        self.attempts += 1
        await self._update_lost_state()

    async def _update_lost_state(self) -> None:
        lost_for = time.monotonic() - self.lost_at
        if lost_for >= self.offline_after:
            await self._set_state(ReaderState.OFFLINE, self.lost_at)
        elif self.state is not ReaderState.OFFLINE:
            await self._set_state(ReaderState.RECONNECTING, self.lost_at)

    async def _wait_before_retry(self) -> None:
        delay = self.backoff(self.attempts - 1)
        until_offline = self.lost_at + self.offline_after - time.monotonic()
        if self.state is not ReaderState.OFFLINE and 0 <= until_offline < delay:
            # Wake up in time to raise the alert when promised, then finish the backoff.
            await asyncio.sleep(until_offline)
            await self._update_lost_state()
            delay -= until_offline
        await asyncio.sleep(delay)


async def supervise_reader(
    make_reader: Callable[[], ReaderDevice[R]],
    on_read: ReadCallback[R],
    on_health: HealthCallback,
    *,
    offline_after: float = 30.0,
    backoff: Callable[[int], float] = backoff_delay,
) -> None:
    """Run a reader forever, reconnecting after failures; return only when cancelled.

    Args:
        make_reader: builds a fresh, unopened device for each attempt (e.g.
            `lambda: Rdm6300Reader(SerialTransport(port, 9600, name="door1"))`).
        on_read: called (or awaited) with every read the device yields.
        on_health: called (or awaited) on every state change: ONLINE when a session opens,
            RECONNECTING as soon as it is lost, OFFLINE once it has been lost for
            `offline_after` seconds, ONLINE again on recovery.
        offline_after: seconds a reader may stay lost before it is reported OFFLINE.
        backoff: seconds to wait before retry `n` (0-based); jittered exponential by default.

    Only `DriverError`s are handled; anything else (a bug, or an error raised by a callback)
    propagates so the gateway's supervisor can escalate it.
    """
    supervisor = _Supervisor(make_reader, on_read, on_health, offline_after, backoff)
    await supervisor.run()
