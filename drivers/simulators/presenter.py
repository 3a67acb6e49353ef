"""Present cards to any simulated serial reader: the engine of `doorgate reader simulate`.

One `CardPresenter` per reader kind wraps that kind's simulator on a pseudo-terminal and knows
how an installer writes a card on the command line:

| kind | card text | presented as |
|---|---|---|
| `rdm6300` | 10 hex digits (version + serial), e.g. `67003B51C6` | frames repeated every 0.1 s |
| `pn532` | a 4/7/10-byte UID in hex, e.g. `04A1B2C3D4E5F6` | the card in the field |
| `idcard` | an ID number, optionally `,name`: `11010519491231002X,张三` | the card on the antenna |
| `osdp` | 3 hex bytes (W26 facility + number) or 4 (W34): `5A0144` | one osdp_RAW card read |

Wiegand has no serial port (two GPIO lines), so it has no presenter: tests drive
`drivers.simulators.wiegand.SimulatedEdgeSource` in code instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import enum
import re
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

from drivers.errors import DriverError
from drivers.idcard.text import IdCardText, IdNumberError, validate_id_number
from drivers.simulators.idcard import IdCardSimulator, sample_card
from drivers.simulators.osdp_pd import OsdpPdSimulator
from drivers.simulators.pn532 import Pn532Simulator
from drivers.simulators.pty import PtyDevice
from drivers.simulators.rdm6300 import Rdm6300Simulator
from drivers.wiegand import encode_w26, encode_w34


class SimulatedKind(enum.StrEnum):
    """The reader kinds that have a simulator on a pseudo-terminal."""

    RDM6300 = "rdm6300"
    IDCARD = "idcard"
    PN532 = "pn532"
    OSDP = "osdp"


SIMULATED_KINDS = tuple(kind.value for kind in SimulatedKind)
_HEX = re.compile(r"^[0-9A-Fa-f]+$")
RDM6300_REPEAT_S = 0.1


class CardPresenter:
    """A simulated reader that cards can be presented to (base class; one subclass per kind).

    Use as `async with open_presenter("pn532", link) as reader: await reader.present(...)`.

    Attributes:
        kind: the reader kind.
        default_card: the card presented when none is given.
        device: the simulator on the pseudo-terminal.
    """

    kind: ClassVar[str] = ""
    default_card: ClassVar[str] = ""

    def __init__(self, device: PtyDevice) -> None:
        self.device = device

    @property
    def port(self) -> str:
        """The stable symlink a reader driver opens."""
        return self.device.port

    def parse(self, card: str) -> object:
        """Check the card text for this kind and return its parsed value.

        Raises:
            ValueError: the text is not a card of this kind (the message says what is expected).
        """
        raise NotImplementedError

    def warning(self, card: str) -> str | None:
        """Why a real reader would refuse this (well-formed) card, or None."""
        del card
        return None

    async def present(self, card: str, hold: float = 1.0) -> None:
        """Present `card` (text as `parse` accepts it) for about `hold` seconds."""
        raise NotImplementedError

    async def start(self) -> None:
        """Create the pseudo-terminal and start answering."""
        self.device.plug()

    async def stop(self) -> None:
        """Stop answering and remove the pseudo-terminal."""
        self.device.unplug()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def _hex_uid(card: str, sizes: tuple[int, ...], what: str) -> bytes:
    text = re.sub(r"[\s:-]", "", card)
    if not _HEX.match(text) or len(text) % 2 or len(text) // 2 not in sizes:
        allowed = "/".join(str(n) for n in sizes)
        raise ValueError(f"{what} must be {allowed} bytes in hex, got {card!r}")
    return bytes.fromhex(text)


class Rdm6300Presenter(CardPresenter):
    """An RDM6300 (EM4100, 125 kHz): a tag held to it is sent every 0.1 s at the 9600 Bd pace."""

    kind = "rdm6300"
    default_card = "67003B51C6"
    device: Rdm6300Simulator

    def __init__(self, link: Path) -> None:
        super().__init__(Rdm6300Simulator(link, paced=True))

    def parse(self, card: str) -> bytes:
        """5 bytes: the version (customer) byte and the 32-bit tag serial."""
        return _hex_uid(card, (5,), "an EM4100 tag (version + serial)")

    async def present(self, card: str, hold: float = 1.0) -> None:
        """Hold the tag in the field: one frame per 0.1 s for `hold` seconds (at least one)."""
        repeats = max(1, round(hold / RDM6300_REPEAT_S))
        await self.device.tap_uid(self.parse(card), repeats=repeats, interval=RDM6300_REPEAT_S)


class Pn532Presenter(CardPresenter):
    """A PN532 (ISO 14443A): the card stays in the field for `hold` seconds."""

    kind = "pn532"
    default_card = "04A1B2C3D4E5F6"
    device: Pn532Simulator

    def __init__(self, link: Path) -> None:
        super().__init__(Pn532Simulator(link))

    def parse(self, card: str) -> bytes:
        """A 4-, 7- or 10-byte UID."""
        return _hex_uid(card, (4, 7, 10), "an ISO 14443A UID")

    async def start(self) -> None:
        """Plug in and answer the host's commands."""
        self.device.start()

    async def stop(self) -> None:
        """Stop answering and unplug."""
        await self.device.stop()

    async def present(self, card: str, hold: float = 1.0) -> None:
        """Put the card in the field, then take it away."""
        self.device.uid = self.parse(card)
        try:
            await asyncio.sleep(hold)
        finally:
            self.device.uid = None


def idcard_from_text(card: str) -> IdCardText:
    """`ID_NUMBER[,NAME]` → a resident card (other fields from `sample_card`, birth from the ID).

    The ID number is not validated here, so installers can present a card the reader must refuse.

    Raises:
        ValueError: not 18 characters, or the name does not fit on the card.
    """
    number, _, name = card.partition(",")
    number = number.strip().upper()
    if len(number) != 18 or not number.isascii() or not number.isalnum():
        raise ValueError(f"an ID number has 18 characters (digits, last may be X), got {card!r}")
    changes: dict[str, object] = {"id_number": number}
    with contextlib.suppress(ValueError):  # else the reader refuses it: keep the sample's date
        changes["birth"] = dt.datetime.strptime(number[6:14], "%Y%m%d").date()
    if name.strip():
        if len(name.strip()) > 15:
            raise ValueError("a name on the card has at most 15 characters")
        changes["name"] = name.strip()
    return sample_card(**changes)


class IdCardPresenter(CardPresenter):
    """A SAM_V resident ID card reader; the card stays on the antenna for `hold` seconds.

    Like many real readers it answers "no card" after one read until the card is lifted, so one
    presentation gives one read.

    Args:
        link: stable path to expose.
        baudrate: the only speed the SAM answers at (115200, or 9600 for old readers).
    """

    kind = "idcard"
    default_card = "11010519491231002X"
    device: IdCardSimulator

    def __init__(self, link: Path, *, baudrate: int = 115200) -> None:
        super().__init__(IdCardSimulator(link, baudrate=baudrate, halt_after_read=True))

    def parse(self, card: str) -> IdCardText:
        """An ID number, optionally followed by `,name`."""
        return idcard_from_text(card)

    def warning(self, card: str) -> str | None:
        """The reader refuses ID numbers that fail GB 11643 (check character, birth date)."""
        try:
            validate_id_number(self.parse(card).id_number)
        except IdNumberError as err:
            return f"a reader refuses this card: {err}"
        return None

    async def start(self) -> None:
        """Plug in and answer the host's commands."""
        self.device.start()

    async def stop(self) -> None:
        """Stop answering and unplug."""
        await self.device.stop()

    async def present(self, card: str, hold: float = 1.0) -> None:
        """Put the card on the antenna, then lift it."""
        await self.present_card(self.parse(card), hold)

    async def present_card(self, card: IdCardText, hold: float = 1.0) -> None:
        """Put a fully described card on the antenna for `hold` seconds."""
        self.device.insert(card)
        try:
            await asyncio.sleep(hold)
        finally:
            self.device.remove()


class OsdpPresenter(CardPresenter):
    """An OSDP reader (libosdp's PeripheralDevice): each presentation is one osdp_RAW card read.

    Args:
        link: stable path to expose.
        address: the PD address the control panel polls.
        scbk: the secure channel base key (None: plain text).
    """

    kind = "osdp"
    default_card = "5A0144"
    device: OsdpPdSimulator

    def __init__(self, link: Path, *, address: int = 0, scbk: bytes | None = None) -> None:
        super().__init__(OsdpPdSimulator(link, address=address, scbk=scbk))

    def parse(self, card: str) -> str:
        """3 bytes (W26: facility, number) or 4 bytes (W34); returns the Wiegand bits."""
        data = _hex_uid(card, (3, 4), "an OSDP Wiegand card (W26: 3 bytes, W34: 4 bytes)")
        if len(data) == 3:
            return encode_w26(data[0], int.from_bytes(data[1:], "big"))
        return encode_w34(int.from_bytes(data, "big"))

    async def present(self, card: str, hold: float = 1.0) -> None:
        """Report the card read to the control panel (`hold` only paces the caller)."""
        bits = self.parse(card)
        try:
            self.device.tap_bits(bits)
        except RuntimeError as err:
            raise DriverError(f"OSDP simulator: {err}") from err
        await asyncio.sleep(min(hold, 0.2))


def open_presenter(
    kind: str,
    link: Path,
    *,
    address: int = 0,
    scbk: bytes | None = None,
    baudrate: int | None = None,
) -> CardPresenter:
    """The (unstarted) simulated reader of `kind` at `link`.

    Args:
        kind: one of `SIMULATED_KINDS`.
        link: the stable symlink to create (its folder must exist; an existing file that is not
            a symlink is never replaced).
        address: OSDP PD address.
        scbk: OSDP secure channel base key.
        baudrate: ID card readers: the speed the SAM answers at.

    Raises:
        ValueError: unknown kind (Wiegand: no serial port), or `link` is a real file/device.
    """
    if kind == "wiegand":
        raise ValueError(
            "a Wiegand reader has no serial port to simulate: it pulses two GPIO lines"
        )
    if link.exists() and not link.is_symlink():
        raise ValueError(f"{link} exists and is not a symlink: refusing to replace it")
    if kind == "rdm6300":
        return Rdm6300Presenter(link)
    if kind == "pn532":
        return Pn532Presenter(link)
    if kind == "idcard":
        return IdCardPresenter(link, baudrate=baudrate or 115200)
    if kind == "osdp":
        return OsdpPresenter(link, address=address, scbk=scbk)
    raise ValueError(f"no simulator for reader kind {kind!r} (have {', '.join(SIMULATED_KINDS)})")
