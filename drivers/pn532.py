"""PN532 NFC controller over HSU (UART, 115200 8N1), reading ISO 14443A card UIDs (protocols §5).

Frame: `00 00 FF LEN LCS TFI PD… DCS 00`, `LEN + LCS ≡ 0`, `TFI + ΣPD + DCS ≡ 0 (mod 256)`,
TFI `D4` host→PN532 and `D5` back, reply code = command + 1. Every valid command is first
answered by an ACK `00 00 FF 00 FF 00`; a NACK `00 00 FF FF 00 00` asks for a retransmission.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from drivers.errors import DriverError, FrameError, ReaderDisconnected, ReaderTimeout
from drivers.rdm6300 import Debouncer
from drivers.serial_transport import SerialTransport
from drivers.types import CardRead, CardTech

logger = logging.getLogger(__name__)

BAUDRATE = 115200
START = b"\x00\xff"
ACK = bytes.fromhex("0000FF00FF00")
NACK = bytes.fromhex("0000FFFF0000")
HOST_TFI = 0xD4
PN532_TFI = 0xD5
ERROR_BODY = b"\x7f"  # application-level error frame `00 00 FF 01 FF 7F 81 00`
# After power-up the chip sleeps (LowVbat); on HSU a 0x55 plus idle bytes wakes it (§5.3).
WAKEUP = b"\x55\x55" + bytes(14)

GET_FIRMWARE_VERSION = 0x02
SAM_CONFIGURATION = 0x14
RF_CONFIGURATION = 0x32
IN_LIST_PASSIVE_TARGET = 0x4A


class FrameKind(enum.StrEnum):
    """What a PN532 frame is."""

    ACK = "ack"
    NACK = "nack"
    ERROR = "error"
    DATA = "data"


@dataclass(frozen=True, slots=True)
class Pn532Frame:
    """A checked frame: its kind and, for data frames, `TFI PD0 PD1…`."""

    kind: FrameKind
    body: bytes = b""


def encode_frame(body: bytes) -> bytes:
    """Wrap `TFI + PD…` (1-255 bytes) into a normal information frame."""
    if not 1 <= len(body) <= 255:
        raise ValueError("a normal PN532 frame carries 1-255 bytes")
    n = len(body)
    return bytes([0, 0, 0xFF, n, (-n) & 0xFF]) + body + bytes([(-sum(body)) & 0xFF, 0])


def encode_command(command: int, params: bytes = b"") -> bytes:
    """A host → PN532 command frame.

    Example: SAMConfiguration `14 01 00 00` → `00 00 FF 05 FB D4 14 01 00 00 17 00`.
    """
    return encode_frame(bytes([HOST_TFI, command]) + params)


def encode_response(command: int, data: bytes = b"") -> bytes:
    """The PN532 → host reply frame to `command` (code + 1), as the simulator sends it."""
    return encode_frame(bytes([PN532_TFI, command + 1]) + data)


def _frame_length(buf: bytes | bytearray, at: int) -> int | None:
    """Bytes of the frame whose start code `00 FF` is at `at`; None if unknown yet."""
    if len(buf) < at + 4:
        return None
    length, lcs = buf[at + 2], buf[at + 3]
    if (length, lcs) in ((0x00, 0xFF), (0xFF, 0x00)):  # ACK / NACK: start code + 2 + postamble
        return 5
    return 2 + 2 + length + 2


def parse_frame(frame: bytes) -> Pn532Frame:
    """Check one frame (with or without its leading preamble `00`).

    Raises:
        FrameError: bad start code, length checksum, data checksum or postamble.
    """
    raw = frame[1:] if frame.startswith(b"\x00\x00\xff") else frame
    if not raw.startswith(START) or len(raw) < 5:
        raise FrameError("PN532 frame must start with 00 FF", frame)
    if raw == ACK[1:]:
        return Pn532Frame(FrameKind.ACK)
    if raw == NACK[1:]:
        return Pn532Frame(FrameKind.NACK)
    length, lcs = raw[2], raw[3]
    if (length + lcs) & 0xFF or length == 0:
        raise FrameError("PN532 length checksum (LCS) mismatch", frame)
    if len(raw) != length + 6 or raw[-1] != 0:
        raise FrameError(f"PN532 frame of LEN {length} has {len(raw)} bytes", frame)
    body = raw[4 : 4 + length]
    if (sum(body) + raw[4 + length]) & 0xFF:
        raise FrameError("PN532 data checksum (DCS) mismatch", frame)
    kind = FrameKind.ERROR if body == ERROR_BODY else FrameKind.DATA
    return Pn532Frame(kind, bytes(body))


class FrameSplitter:
    """Cuts frames out of a byte stream, resynchronising on the `00 FF` start code.

    Attributes:
        rejected: count of garbage runs or bad frames discarded.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.rejected = 0

    def reset(self) -> None:
        """Forget partial input."""
        self._buf.clear()

    def feed(self, chunk: bytes) -> list[Pn532Frame]:
        """Add bytes; return the frames they complete, oldest first."""
        self._buf += chunk
        frames: list[Pn532Frame] = []
        while True:
            start = self._buf.find(START)
            if start < 0:
                self._drop(max(0, len(self._buf) - 1))  # keep a trailing 00
                return frames
            self._drop(start)
            size = _frame_length(self._buf, 0)
            if size is None or len(self._buf) < size:
                return frames
            try:
                frames.append(parse_frame(bytes(self._buf[:size])))
            except FrameError as err:
                logger.debug("pn532: dropped bad frame: %s", err)
                self._drop(1)
                continue
            del self._buf[:size]

    def _drop(self, count: int) -> None:
        if count:
            self.rejected += 1
            del self._buf[:count]


@dataclass(frozen=True, slots=True)
class Target:
    """One ISO 14443A target from InListPassiveTarget (§5.5)."""

    number: int
    atqa: int
    sak: int
    uid: bytes


def parse_targets(body: bytes) -> list[Target]:
    """Decode the body `D5 4B NbTg Tg ATQA(2) SAK len UID… [ATS]` of an InListPassiveTarget reply.

    Raises:
        FrameError: wrong reply code or truncated target data.
    """
    if body[:2] != bytes([PN532_TFI, IN_LIST_PASSIVE_TARGET + 1]) or len(body) < 3:
        raise FrameError("not an InListPassiveTarget reply", body)
    if body[2] == 0:
        return []
    data = body[3:]
    if len(data) < 5 or len(data) < 5 + data[4]:
        raise FrameError("InListPassiveTarget reply truncated", body)
    uid_len = data[4]
    if uid_len not in (4, 7, 10):
        raise FrameError(f"ISO 14443A UID cannot be {uid_len} bytes", body)
    uid = bytes(data[5 : 5 + uid_len])
    return [Target(data[0], int.from_bytes(data[1:3], "big"), data[3], uid)]


class Pn532Error(DriverError):
    """The PN532 answered with an error frame or a reply to another command."""


class Pn532Reader:
    """A PN532 on HSU as a card reader: yields one `CardRead` per card presentation.

    Args:
        transport: an unopened serial transport (115200 Bd).
        debounce: seconds a UID must be absent before it is reported again.
        poll_interval: pause between InListPassiveTarget polls when the field is empty.
        ack_timeout: wait for the ACK of each command (the chip sends it within ~15 ms).
        response_timeout: wait for the reply after the ACK.
        retries: transmissions per command before giving up (NACK or silence).
        passive_retries: MxRtyPassiveActivation (RFConfiguration item 5); bounded so an empty
            field answers "0 targets" instead of waiting forever (the 0xFF default).
        max_silent: consecutive failed commands after which the reader counts as gone.
    """

    def __init__(
        self,
        transport: SerialTransport,
        *,
        debounce: float = 0.5,
        poll_interval: float = 0.1,
        ack_timeout: float = 0.2,
        response_timeout: float = 0.5,
        retries: int = 3,
        passive_retries: int = 0x10,
        max_silent: int = 3,
    ) -> None:
        self.transport = transport
        self.poll_interval = poll_interval
        self.ack_timeout = ack_timeout
        self.response_timeout = response_timeout
        self.retries = retries
        self.passive_retries = passive_retries
        self.max_silent = max_silent
        self.firmware: bytes = b""
        self._splitter = FrameSplitter()
        self._pending: deque[Pn532Frame] = deque()
        self._debouncer = Debouncer(debounce)
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
        await self.transport.__aenter__()
        try:
            await self.initialise()
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
        if self.transport.is_open:
            with contextlib.suppress(DriverError):
                await self.transport.write(ACK)  # abort a pending command (nfcpy does the same)
        await self.transport.__aexit__(exc_type, exc, tb)

    async def initialise(self) -> None:
        """Wake the chip, enter normal mode and bound the passive activation retries."""
        await self.transport.write(WAKEUP)
        await self.call(SAM_CONFIGURATION, b"\x01\x00\x00")
        self.firmware = await self.call(GET_FIRMWARE_VERSION)
        await self.call(RF_CONFIGURATION, bytes([0x05, 0xFF, 0x01, self.passive_retries]))
        logger.info("%s: PN532 firmware %s", self.name, self.firmware.hex())

    async def call(self, command: int, params: bytes = b"") -> bytes:
        """Send a command (retransmitting on NACK or silence) and return the reply's data.

        Returns:
            The reply's bytes after `D5 <command+1>`.

        Raises:
            ReaderTimeout: no ACK + reply after `retries` transmissions.
            Pn532Error: an error frame or an unexpected reply.
        """
        frame = encode_command(command, params)
        for attempt in range(self.retries):
            await self.transport.discard_input()
            self._splitter.reset()
            self._pending.clear()
            await self.transport.write(frame)
            try:
                if await self._await_ack():
                    return await self._await_reply(command)
            except ReaderTimeout:
                logger.debug("%s: no answer to %02X (attempt %d)", self.name, command, attempt + 1)
                await self.transport.write(ACK)  # cancel whatever the chip is still doing
        raise ReaderTimeout(f"{self.name}: PN532 did not answer command {command:02X}")

    async def _next_frame(self, seconds: float) -> Pn532Frame:
        deadline = time.monotonic() + seconds
        while not self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ReaderTimeout(f"{self.name}: no PN532 frame within {seconds} s")
            # ACK and reply often arrive in one chunk: keep the frames we do not need yet.
            self._pending.extend(self._splitter.feed(await self.transport.read(512, remaining)))
        return self._pending.popleft()

    async def _await_ack(self) -> bool:
        frame = await self._next_frame(self.ack_timeout)
        if frame.kind is FrameKind.NACK:
            logger.debug("%s: NACK, retransmitting", self.name)
            return False
        if frame.kind is FrameKind.ERROR:
            raise Pn532Error(f"{self.name}: PN532 rejected the command (error frame)")
        return frame.kind is FrameKind.ACK

    async def _await_reply(self, command: int) -> bytes:
        frame = await self._next_frame(self.response_timeout)
        if frame.kind is FrameKind.ERROR:
            raise Pn532Error(f"{self.name}: PN532 error frame in reply to {command:02X}")
        if frame.body[:2] != bytes([PN532_TFI, command + 1]):
            raise Pn532Error(f"{self.name}: reply {frame.body[:2].hex()} to {command:02X}")
        return frame.body[2:]

    async def poll(self) -> Target | None:
        """One InListPassiveTarget for a 106 kbps type A card; None when the field is empty."""
        data = await self.call(IN_LIST_PASSIVE_TARGET, b"\x01\x00")
        targets = parse_targets(bytes([PN532_TFI, IN_LIST_PASSIVE_TARGET + 1]) + data)
        return targets[0] if targets else None

    async def reads(self) -> AsyncIterator[CardRead]:
        """Yield card reads; raise `ReaderDisconnected` when the chip stops answering."""
        while True:
            target = await self._cycle()
            now = time.monotonic()
            if target is not None and self._debouncer.is_new(target.uid, now):
                extra: dict[str, int | str] = {"atqa": target.atqa, "sak": target.sak}
                yield CardRead(self.name, CardTech.ISO14443A, target.uid, now, extra)
            await asyncio.sleep(self.poll_interval if target is None else self.poll_interval / 2)

    async def _cycle(self) -> Target | None:
        try:
            target = await self.poll()
        except (ReaderTimeout, Pn532Error, FrameError) as err:
            self._silent += 1
            logger.warning("%s: %s", self.name, err)
            if self._silent >= self.max_silent:
                raise ReaderDisconnected(f"{self.name}: PN532 stopped answering ({err})") from err
            return None
        self._silent = 0
        return target
