"""The door: lock relay, door contact and exit button.

A fail-safe lock (maglock) holds while powered, so the relay is energised to *lock* and a power
cut opens the door (fire code); a fail-secure lock (electric strike) is energised to *unlock*.
`unlock()` pulses the relay for a configurable time. Contact and exit-button changes come out as
`DoorEvent`s from `events()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any, Protocol, Self

from drivers.errors import DriverError

logger = logging.getLogger(__name__)


class DoorEventKind(enum.StrEnum):
    """What happened at the door."""

    OPENED = "opened"
    CLOSED = "closed"
    EXIT_REQUEST = "exit_request"


class LockPolarity(enum.StrEnum):
    """How the lock behaves without power."""

    FAIL_SAFE = "fail_safe"  # unlocked without power (maglock): energise to lock
    FAIL_SECURE = "fail_secure"  # locked without power (strike): energise to unlock


@dataclass(frozen=True, slots=True)
class DoorEvent:
    """One change seen at the door.

    Attributes:
        door: the configured door name.
        kind: opened, closed or exit_request.
        monotonic: `time.monotonic()` when it was seen.
    """

    door: str
    kind: DoorEventKind
    monotonic: float


@dataclass(frozen=True, slots=True)
class RelayCommand:
    """One change of the lock relay, as `SimulatedDoor` records it.

    Attributes:
        energised: the relay coil state after the command.
        locked: whether the door is locked after the command.
        monotonic: when.
    """

    energised: bool
    locked: bool
    monotonic: float


class Door(Protocol):
    """What the gateway drives: `GpiodDoor` on a Pi, `SimulatedDoor` in tests and the demo."""

    name: str

    @property
    def contact_open(self) -> bool:
        """Whether the door leaf is open now."""
        ...

    @property
    def locked(self) -> bool:
        """Whether the lock is engaged now."""
        ...

    async def unlock(self, seconds: float | None = None) -> None:
        """Release the lock for `seconds` (default: the configured pulse), then lock again."""
        ...

    def events(self) -> AsyncIterator[DoorEvent]:
        """Contact and exit-button changes, as they happen."""
        ...

    async def __aenter__(self) -> Self:
        """Claim the lines and lock."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Lock and release the lines."""
        ...


class _RelayDoor:
    """Shared pulse and event logic; subclasses drive the relay coil."""

    def __init__(self, name: str, pulse: float, polarity: LockPolarity) -> None:
        self.name = name
        self.pulse = pulse
        self.polarity = polarity
        self._locked = True
        self._contact_open = False
        self._relock_at = 0.0
        self._relock: asyncio.Task[None] | None = None
        self._events: asyncio.Queue[DoorEvent] = asyncio.Queue()

    @property
    def contact_open(self) -> bool:
        """Whether the door leaf is open now."""
        return self._contact_open

    @property
    def locked(self) -> bool:
        """Whether the lock is engaged now."""
        return self._locked

    def _energise(self, energised: bool) -> None:
        raise NotImplementedError

    def _apply(self, locked: bool) -> None:
        # Fail-safe locks hold while powered; fail-secure strikes release while powered.
        self._energise(locked if self.polarity is LockPolarity.FAIL_SAFE else not locked)
        self._locked = locked

    async def unlock(self, seconds: float | None = None) -> None:
        """Release the lock for `seconds` (default `pulse`); a second call extends the pulse."""
        self._relock_at = max(self._relock_at, time.monotonic() + (seconds or self.pulse))
        if self._locked:
            self._apply(False)
            logger.info("%s: unlocked", self.name)
        if self._relock is None or self._relock.done():
            self._relock = asyncio.get_running_loop().create_task(self._relock_later())

    async def _relock_later(self) -> None:
        # A new unlock() may push the deadline while we sleep: re-check it after each sleep.
        while (remaining := self._relock_at - time.monotonic()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(remaining)
        self._apply(True)
        logger.info("%s: locked", self.name)

    async def lock(self) -> None:
        """Lock now, cancelling a running pulse."""
        if self._relock is not None:
            self._relock.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._relock
            self._relock = None
        self._relock_at = 0.0
        self._apply(True)

    def _emit(self, kind: DoorEventKind) -> None:
        if kind is DoorEventKind.OPENED:
            self._contact_open = True
        elif kind is DoorEventKind.CLOSED:
            self._contact_open = False
        self._events.put_nowait(DoorEvent(self.name, kind, time.monotonic()))

    async def events(self) -> AsyncIterator[DoorEvent]:
        """Contact and exit-button changes, as they happen."""
        while True:
            yield await self._events.get()


class SimulatedDoor(_RelayDoor):
    """A door for tests and the demo: records relay commands, lets tests act as a person.

    Args:
        name: the configured door name.
        pulse: default unlock time in seconds.
        polarity: fail-safe (maglock) or fail-secure (strike).

    Attributes:
        commands: every relay change with its timestamp.
    """

    def __init__(
        self,
        name: str = "door",
        *,
        pulse: float = 3.0,
        polarity: LockPolarity = LockPolarity.FAIL_SECURE,
    ) -> None:
        super().__init__(name, pulse, polarity)
        self.commands: list[RelayCommand] = []
        self.energised = False

    def _energise(self, energised: bool) -> None:
        self.energised = energised
        self.commands.append(
            RelayCommand(energised, not self._would_unlock(energised), time.monotonic())
        )

    def _would_unlock(self, energised: bool) -> bool:
        return energised is (self.polarity is LockPolarity.FAIL_SECURE)

    async def __aenter__(self) -> Self:
        self._apply(True)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.lock()

    def open_contact(self) -> None:
        """Someone opened the door leaf."""
        if not self._contact_open:
            self._emit(DoorEventKind.OPENED)

    def close_contact(self) -> None:
        """The door leaf closed."""
        if self._contact_open:
            self._emit(DoorEventKind.CLOSED)

    def press_exit(self) -> None:
        """Someone pressed the request-to-exit button."""
        self._emit(DoorEventKind.EXIT_REQUEST)


class GpiodDoor(_RelayDoor):
    """The door on GPIO lines through libgpiod v2 (not run by the tests: no GPIO chip here).

    Args:
        chip: gpiochip path, e.g. `/dev/gpiochip0`.
        relay: output line driving the lock relay (active = coil energised).
        contact: input line of the door contact, active (low, pulled up) while the door is closed.
        exit_button: input line of the exit button, active (low) while pressed.
        name: the configured door name.
        pulse: default unlock time in seconds.
        polarity: fail-safe (maglock) or fail-secure (strike).
        debounce: kernel debounce of the inputs (contacts bounce for a few ms).
    """

    def __init__(
        self,
        chip: str,
        *,
        relay: int,
        contact: int,
        exit_button: int,
        name: str = "door",
        pulse: float = 3.0,
        polarity: LockPolarity = LockPolarity.FAIL_SECURE,
        debounce: float = 0.02,
    ) -> None:
        super().__init__(name, pulse, polarity)
        self.chip = chip
        self.relay, self.contact, self.exit_button = relay, contact, exit_button
        self.debounce = debounce
        self._request: Any = None
        self._watch: asyncio.Task[None] | None = None

    def _energise(self, energised: bool) -> None:
        from gpiod.line import Value

        if self._request is not None:
            self._request.set_value(self.relay, Value.ACTIVE if energised else Value.INACTIVE)

    async def __aenter__(self) -> Self:
        import gpiod
        from gpiod.line import Bias, Direction, Edge

        locked_energised = self.polarity is LockPolarity.FAIL_SAFE
        inputs = gpiod.LineSettings(
            direction=Direction.INPUT, edge_detection=Edge.BOTH, bias=Bias.PULL_UP,
            active_low=True, debounce_period=timedelta(seconds=self.debounce),
        )  # fmt: skip
        relay = gpiod.LineSettings(direction=Direction.OUTPUT)
        config: dict[Any, Any] = {self.relay: relay, (self.contact, self.exit_button): inputs}
        try:
            self._request = await asyncio.to_thread(
                gpiod.request_lines, self.chip, config, "doorgate-door"
            )
        except OSError as err:
            raise DriverError(
                f"{self.name}: cannot claim door lines on {self.chip}: {err}"
            ) from err
        self._apply(True)
        self._energise(locked_energised)
        self._contact_open = not bool(self._request.get_value(self.contact).value)
        self._watch = asyncio.get_running_loop().create_task(self._watch_inputs())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.lock()
        if self._watch is not None:
            self._watch.cancel()
        request, self._request = self._request, None
        if request is not None:
            request.release()

    def _read_edges(self) -> list[tuple[int, bool]]:
        from gpiod.edge_event import EdgeEvent

        if not self._request.wait_edge_events(timedelta(seconds=0.5)):
            return []
        return [
            (e.line_offset, e.event_type is EdgeEvent.Type.RISING_EDGE)
            for e in self._request.read_edge_events()
        ]

    async def _watch_inputs(self) -> None:
        while True:
            for offset, active in await asyncio.to_thread(self._read_edges):
                if offset == self.contact:
                    self._emit(DoorEventKind.CLOSED if active else DoorEventKind.OPENED)
                elif active:
                    self._emit(DoorEventKind.EXIT_REQUEST)
