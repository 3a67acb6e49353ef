"""The resident ID card reader as a device: find → select → read, with baud probing.

The SAM is strictly request/response (protocols §1.5): one outstanding command, find and select
before every read, per-command timeouts (~1 s find/select, ~3 s read). After a read many readers
keep answering "no card" until the card is lifted, others re-read it every cycle, so the same
ID number is debounced.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from drivers.errors import DriverError, FrameError, ReaderDisconnected, ReaderTimeout
from drivers.idcard.frames import (
    Command,
    FrameSplitter,
    NoCardError,
    ReadFailedError,
    SamResponse,
    SamStatusError,
    SelectFailedError,
    check_status,
    encode_command,
    parse_response,
)
from drivers.idcard.text import CardDataError, IdCardText, IdCardType, parse_text_block
from drivers.rdm6300 import Debouncer
from drivers.serial_transport import SerialTransport

logger = logging.getLogger(__name__)

BAUDRATES = (115200, 9600)  # 115200 is the SAM_V default; old CVR-100 builds run at 9600


@dataclass(frozen=True, slots=True)
class IdCardRead:
    """One ID card read by a SAM reader.

    Personal fields and the photo are excluded from `repr`; the photo stays in memory only.

    Attributes:
        card_type: the card family (resident, HK/Macao/Taiwan permit, foreigner 2017/2023).
        name: name as printed (Chinese, or English on foreigner cards without a Chinese name).
        sex: GB/T 2261.1 code (`1` male, `2` female).
        ethnicity: GB 3304 code (`01` = 汉) on resident cards, "" otherwise.
        birth: date of birth.
        address: address ("" on foreigner cards).
        id_number: citizen ID or permit number (validated; sensitive: hash before storing).
        issuer: issuing authority.
        valid_from: first day of validity.
        valid_to: last day of validity; None for 长期 (long-term).
        photo_wlt: the 1024-byte WLT photo blob, never written anywhere by the driver.
        reader: the configured reader name.
        monotonic: `time.monotonic()` when the read reply was complete.
        extra: family-specific fields (pass_number, english_name, nationality…).
    """

    card_type: IdCardType
    name: str = field(repr=False)
    sex: str
    ethnicity: str
    birth: dt.date = field(repr=False)
    address: str = field(repr=False)
    id_number: str = field(repr=False)
    issuer: str
    valid_from: dt.date
    valid_to: dt.date | None
    photo_wlt: bytes = field(repr=False)
    reader: str
    monotonic: float
    extra: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_text(cls, text: IdCardText, photo: bytes, reader: str, now: float) -> IdCardRead:
        """Combine a decoded text block with the photo and the reader context."""
        return cls(
            text.card_type, text.name, text.sex, text.ethnicity, text.birth, text.address,
            text.id_number, text.issuer, text.valid_from, text.valid_to, photo, reader, now,
            dict(text.extra),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class CardRejected:
    """A card the reader refused (invalid ID number, corrupt text), for UI feedback.

    Attributes:
        reader: the configured reader name.
        reason: why, in words that never include the ID number.
        monotonic: when.
    """

    reader: str
    reason: str
    monotonic: float


def parse_read_payload(data: bytes) -> tuple[IdCardText, bytes]:
    """Split the payload of a `30 01` reply into decoded text and the WLT photo blob.

    The lengths come from the reply (never hard-coded, protocols §1.6).

    Raises:
        FrameError: lengths inconsistent with the payload; or the text's own errors.
    """
    if len(data) < 4:
        raise FrameError("ID card read reply too short for its length fields", data)
    text_len = int.from_bytes(data[0:2], "big")
    photo_len = int.from_bytes(data[2:4], "big")
    if len(data) < 4 + text_len + photo_len:
        raise FrameError("ID card read reply shorter than its text+photo lengths", data)
    text = parse_text_block(data[4 : 4 + text_len])
    return text, bytes(data[4 + text_len : 4 + text_len + photo_len])


class IdCardReader:
    """A SAM_V ID card reader on a serial port.

    Use as `async with IdCardReader(transport) as reader: async for card in reader.reads():`.
    Entering opens the transport and probes the baud rates in order.

    Args:
        transport: an unopened serial transport (its baudrate is overridden by the probe).
        debounce: seconds the same ID number must be absent before it is reported again.
        poll_interval: pause between find attempts when no card is present.
        baudrates: speeds to probe, in order.
        probe_timeout: how long to wait for the SAM at each probed speed.
        command_timeout: limit for find/select/status commands.
        read_timeout: limit for the 1295-byte read reply (≈ 112 ms on the wire + RF time).
        max_silent: consecutive unanswered commands after which the reader counts as gone.
        on_reject: called with a `CardRejected` for every card refused.
    """

    def __init__(
        self,
        transport: SerialTransport,
        *,
        debounce: float = 3.0,
        poll_interval: float = 0.3,
        baudrates: Sequence[int] = BAUDRATES,
        probe_timeout: float = 0.5,
        command_timeout: float = 1.0,
        read_timeout: float = 3.0,
        max_silent: int = 3,
        on_reject: Callable[[CardRejected], None] | None = None,
    ) -> None:
        self.transport = transport
        self.poll_interval = poll_interval
        self.baudrates = tuple(baudrates)
        self.probe_timeout = probe_timeout
        self.command_timeout = command_timeout
        self.read_timeout = read_timeout
        self.max_silent = max_silent
        self.on_reject = on_reject
        self._splitter = FrameSplitter()
        self._debouncer = Debouncer(debounce)
        self._lock = asyncio.Lock()
        self._silent = 0

    @property
    def name(self) -> str:
        """The configured reader name."""
        return self.transport.name

    @property
    def rejected_frames(self) -> int:
        """Garbage runs and bad frames discarded so far."""
        return self._splitter.rejected

    async def __aenter__(self) -> Self:
        self.transport.baudrate = self.baudrates[0]
        await self.transport.__aenter__()
        try:
            await self.probe()
        except BaseException as err:
            await self.transport.__aexit__(type(err), err, err.__traceback__)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.transport.__aexit__(exc_type, exc, tb)

    async def probe(self) -> int:
        """Find the speed the SAM answers at (SAM status check at each rate in turn).

        Returns:
            The working baud rate, left configured on the transport.

        Raises:
            ReaderTimeout: the SAM answered at none of the rates.
        """
        for baud in self.baudrates:
            if baud != self.transport.baudrate:
                self.transport.set_baudrate(baud)
            try:
                await self.command(Command.SAM_STATUS, self.probe_timeout)
            except (ReaderTimeout, FrameError):
                logger.info("%s: no SAM answer at %d Bd", self.name, baud)
                continue
            return baud
        rates = ", ".join(str(b) for b in self.baudrates)
        raise ReaderTimeout(f"{self.name}: no SAM answered at {rates} Bd")

    async def command(self, command: Command, limit: float | None = None) -> SamResponse:
        """Send one command and return its checked reply.

        Args:
            command: the SAM command.
            limit: seconds to wait for the reply (default: `command_timeout`).

        Raises:
            ReaderTimeout: no complete valid reply within `limit`.
            SamStatusError: the SAM answered with a failure status (typed per SW3).
            ReaderDisconnected: the port vanished.
        """
        seconds = self.command_timeout if limit is None else limit
        async with self._lock:
            await self.transport.discard_input()
            self._splitter.reset()
            await self.transport.write(encode_command(command))
            frame = await self._receive(seconds)
        return check_status(command, parse_response(frame))

    async def _receive(self, seconds: float) -> bytes:
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ReaderTimeout(f"{self.name}: no complete SAM reply within {seconds} s")
            frames = self._splitter.feed(await self.transport.read(4096, remaining))
            if frames:
                # One outstanding command: anything after the first frame is stray.
                return frames[0]

    async def sam_id(self) -> str:
        """The SAM's management number as `aa.bb-cccccccc-dddddddddd-eeeeeeeeee` (§1.6)."""
        data = (await self.command(Command.SAM_ID)).data
        if len(data) < 16:
            raise FrameError("SAM ID reply shorter than 16 bytes", data)
        le = [int.from_bytes(data[a:b], "little") for a, b in ((0, 2), (2, 4), (4, 8), (8, 12))]
        last = int.from_bytes(data[12:16], "little")
        return f"{le[0]:02d}.{le[1]:02d}-{le[2]:08d}-{le[3]:010d}-{last:010d}"

    async def read_card(self) -> IdCardRead | None:
        """One find → select → read cycle; None when no card is on the antenna.

        Raises:
            SamStatusError: select/read failed (card moved) or a SAM fault.
            CardDataError: the card's text is invalid (e.g. bad ID check character).
            ReaderTimeout, ReaderDisconnected, FrameError: link problems.
        """
        try:
            await self.command(Command.FIND)
        except NoCardError:
            return None
        await self.command(Command.SELECT)
        reply = await self.command(Command.READ_TEXT_PHOTO, self.read_timeout)
        now = time.monotonic()
        text, photo = parse_read_payload(reply.data)
        return IdCardRead.from_text(text, photo, self.name, now)

    async def reads(self) -> AsyncIterator[IdCardRead]:
        """Yield each newly presented card; keep going through bad cards and garbage.

        Raises:
            ReaderDisconnected: the port vanished, or the SAM stopped answering for
                `max_silent` commands in a row.
        """
        while True:
            card = await self._cycle()
            if card is not None and self._debouncer.is_new(card.id_number.encode(), card.monotonic):
                yield card
            elif card is None:
                await asyncio.sleep(self.poll_interval)

    async def _cycle(self) -> IdCardRead | None:
        try:
            card = await self.read_card()
        except (SelectFailedError, ReadFailedError) as err:
            logger.debug("%s: card moved: %s", self.name, err)
            return None
        except CardDataError as err:
            self._reject(str(err))
            return None
        except (ReaderTimeout, FrameError, SamStatusError) as err:
            self._note_failure(err)
            return None
        self._silent = 0
        return card

    def _note_failure(self, err: DriverError) -> None:
        if isinstance(err, ReaderTimeout):
            self._silent += 1
        logger.warning("%s: %s", self.name, err)
        if self._silent >= self.max_silent:
            raise ReaderDisconnected(f"{self.name}: SAM stopped answering ({err})") from err

    def _reject(self, reason: str) -> None:
        logger.warning("%s: card rejected: %s", self.name, reason)
        if self.on_reject is not None:
            self.on_reject(CardRejected(self.name, reason, time.monotonic()))
