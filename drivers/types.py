"""Plain records of what a device saw, handed from drivers to the gateway."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class CardTech(enum.StrEnum):
    """The air interface or bus a card number came over."""

    EM4100 = "em4100"
    ISO14443A = "iso14443a"
    WIEGAND = "wiegand"
    OSDP = "osdp"
    RESIDENT_ID = "resident_id"


@dataclass(frozen=True, slots=True)
class CardRead:
    """One card presented to a reader.

    Attributes:
        reader: the configured name of the reader that saw the card.
        tech: how the number was read.
        uid: the card number as the reader reports it (raw bytes; sensitive, hash before storing).
        monotonic: `time.monotonic()` when the complete frame arrived (for latency budgets).
        extra: protocol details that are not identifying (e.g. EM4100 version byte, bit count).
    """

    reader: str
    tech: CardTech
    uid: bytes
    monotonic: float
    extra: dict[str, int | str] = field(default_factory=dict)

    @property
    def uid_hex(self) -> str:
        """The UID as upper-case hex, the form installers type with `--uid`."""
        return self.uid.hex().upper()


@dataclass(frozen=True, slots=True)
class LinkHealth:
    """Health of one device link, polled by the gateway to raise `reader_offline`.

    Attributes:
        name: the configured device name.
        connected: whether the link is open right now.
        since: `time.monotonic()` of the last change of `connected`.
        last_error: a short text of the last failure, if any.
    """

    name: str
    connected: bool
    since: float
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class KeyPress:
    """Keys typed on a reader's keypad (Wiegand 4/8-bit bursts, OSDP keypad replies).

    Attributes:
        reader: the configured name of the reader.
        keys: the keys, `0-9`, `*` and `#`.
        monotonic: `time.monotonic()` when the keys arrived.
    """

    reader: str
    keys: str
    monotonic: float
