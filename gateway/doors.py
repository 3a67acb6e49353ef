"""The door side as the gateway sees it: grant a pass, know what was commanded."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Protocol

logger = logging.getLogger(__name__)


class DoorActuator(Protocol):
    """What the gateway needs from a door: release the lock for one pass."""

    name: str

    async def grant(self) -> None:
        """Release the lock for the configured pulse; return at once (relock runs on its own)."""


@dataclass
class RecordingDoor:
    """A door without hardware: logs and records each grant (demo and tests).

    Attributes:
        name: the door name.
        unlock_s: pulse length in seconds.
        grants: `time.monotonic()` of every grant, in order.
    """

    name: str
    unlock_s: float = 3.0
    grants: list[float] = field(default_factory=list)
    _relock: asyncio.Task[None] | None = None

    async def grant(self) -> None:
        """Record the grant and schedule the relock."""
        self.grants.append(time.monotonic())
        logger.info("door %s: unlocked for %.1f s", self.name, self.unlock_s)
        if self._relock is not None:
            self._relock.cancel()
        self._relock = asyncio.get_running_loop().create_task(self._relock_later())

    async def _relock_later(self) -> None:
        await asyncio.sleep(self.unlock_s)
        logger.info("door %s: locked", self.name)
