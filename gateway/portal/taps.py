""""Tap the card now": hand the next card read at a chosen reader to a waiting portal request.

The daemon calls `TapHub.offer` for every card read (from any thread or its event loop); a portal
request waiting in `TapHub.wait` for that reader takes it. A read nobody waits for is ignored
here and decided by the rules as usual.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from rules.model import CredentialKind


@dataclass(frozen=True, slots=True)
class Tap:
    """One card presented while the portal was waiting (the UID never leaves the server).

    Attributes:
        reader: the reader's configured name.
        kind: the credential kind (``ic`` for RFID cards, ``idcard`` for resident ID cards).
        value: the card UID (upper-case hex), or the ID number for an ID card.
        name: the holder's name as read from an ID card; None for other cards.
    """

    reader: str
    kind: CredentialKind
    value: str
    name: str | None = None

    @property
    def uid_hex(self) -> str:
        """The card UID (older name of `value`)."""
        return self.value

    def __repr__(self) -> str:
        return f"Tap(reader={self.reader!r}, kind={self.kind.value!r}, value=<hidden>)"

    __str__ = __repr__


class TapHub:
    """Waiters per reader name; the first waiter for a reader gets the next read there."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Future[Tap]]]] = {}

    def waiting(self, reader: str) -> bool:
        """True when a portal request waits for a card at `reader`."""
        with self._lock:
            return any(not f.done() for _, f in self._waiters.get(reader, []))

    def offer(
        self, reader: str, kind: CredentialKind, value: str, *, name: str | None = None
    ) -> bool:
        """Give a card read to the oldest waiter at `reader`; False when nobody waits.

        True means a portal request took the read: the daemon must then not decide it (it is an
        enrolment, not an entry). Safe to call from any thread.

        Args:
            reader: the reader's configured name.
            kind: the credential kind.
            value: the card UID (hex), or the ID number of a resident ID card.
            name: the name read from a resident ID card.
        """
        with self._lock:
            waiters = self._waiters.get(reader, [])
            while waiters:
                loop, future = waiters.pop(0)
                if not future.done() and not loop.is_closed():
                    tap = Tap(reader, kind, value, name)
                    loop.call_soon_threadsafe(_resolve, future, tap)
                    return True
        return False

    async def wait(self, reader: str, timeout: float) -> Tap | None:
        """The next card read at `reader` within `timeout` seconds, else None."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Tap] = loop.create_future()
        with self._lock:
            self._waiters.setdefault(reader, []).append((loop, future))
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            return None
        finally:
            with self._lock:
                entries = self._waiters.get(reader, [])
                self._waiters[reader] = [e for e in entries if e[1] is not future]


def _resolve(future: asyncio.Future[Tap], tap: Tap) -> None:
    if not future.done():
        future.set_result(tap)
