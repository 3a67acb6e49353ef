"""SAM_V frame layer of the resident ID card reader (protocols §1.2-1.4).

Host → SAM: `AA AA AA 96 69 | LEN(be16) | CMD PARA DATA… | CHK`;
SAM → host: `AA AA AA 96 69 | LEN(be16) | SW1 SW2 SW3 DATA… | CHK`.
LEN counts every byte after itself including CHK; CHK is the XOR of LEN…DATA (not the preamble).
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from functools import reduce
from operator import xor

from drivers.errors import DriverError, FrameError

logger = logging.getLogger(__name__)

PREAMBLE = b"\xaa\xaa\xaa\x96\x69"
HEADER_LEN = 7  # preamble + LEN
# The longest real reply (30 10 with two fingerprints) has LEN 0x090A; anything much larger is
# garbage that happens to follow a preamble, and waiting for it would stall the reader.
MAX_LEN = 0x0C00
MIN_LEN = 3  # a command: CMD PARA CHK; a reply has at least SW1 SW2 SW3 CHK


class Command(enum.Enum):
    """SAM commands as (CMD, PARA) pairs (protocols §1.3)."""

    RESET = (0x10, 0xFF)
    SAM_STATUS = (0x11, 0xFF)
    SAM_ID = (0x12, 0xFF)
    FIND = (0x20, 0x01)
    SELECT = (0x20, 0x02)
    READ_TEXT_PHOTO = (0x30, 0x01)
    READ_TEXT_PHOTO_FINGERPRINT = (0x30, 0x10)
    READ_APPENDED_ADDRESS = (0x30, 0x03)

    @property
    def success(self) -> int:
        """The SW3 that means success: 9F for find, 90 for everything else (§1.4)."""
        return 0x9F if self is Command.FIND else 0x90


def checksum(data: bytes) -> int:
    """XOR of `data` (pass the bytes from LEN up to, not including, CHK)."""
    return reduce(xor, data, 0)


def _wrap(body: bytes) -> bytes:
    core = (len(body) + 1).to_bytes(2, "big") + body
    return PREAMBLE + core + bytes([checksum(core)])


def encode_command(command: Command, data: bytes = b"") -> bytes:
    """Build a host → SAM frame, e.g. FIND → `AA AA AA 96 69 00 03 20 01 22`."""
    return _wrap(bytes(command.value) + data)


def encode_response(sw3: int, data: bytes = b"", *, sw1: int = 0, sw2: int = 0) -> bytes:
    """Build a SAM → host frame (used by the simulator and tests)."""
    return _wrap(bytes([sw1, sw2, sw3]) + data)


@dataclass(frozen=True, slots=True)
class SamResponse:
    """A checked SAM reply: status words and payload."""

    sw1: int
    sw2: int
    sw3: int
    data: bytes


def _check_envelope(frame: bytes, min_body: int) -> bytes:
    if len(frame) < HEADER_LEN + MIN_LEN or not frame.startswith(PREAMBLE):
        raise FrameError("SAM frame must start with AA AA AA 96 69 and hold LEN", frame)
    length = int.from_bytes(frame[5:7], "big")
    if len(frame) != HEADER_LEN + length:
        raise FrameError(f"SAM frame LEN {length} does not match {len(frame)} bytes", frame)
    if length < min_body + 1:
        raise FrameError(f"SAM frame LEN {length} too short", frame)
    expected = checksum(frame[5:-1])
    if frame[-1] != expected:
        raise FrameError(f"SAM checksum {frame[-1]:02X} != XOR {expected:02X}", frame)
    return frame[7:-1]


def parse_response(frame: bytes) -> SamResponse:
    """Check and decode one complete SAM → host frame.

    Raises:
        FrameError: bad preamble, length or checksum.
    """
    body = _check_envelope(frame, 3)
    return SamResponse(body[0], body[1], body[2], bytes(body[3:]))


def parse_command(frame: bytes) -> tuple[int, int, bytes]:
    """Check and decode one host → SAM frame into (CMD, PARA, DATA) (for the simulator).

    Raises:
        FrameError: bad preamble, length or checksum.
    """
    body = _check_envelope(frame, 2)
    return body[0], body[1], bytes(body[2:])


class FrameSplitter:
    """Cuts complete, checksum-valid frames out of a byte stream, resynchronising on the preamble.

    Attributes:
        rejected: count of garbage runs or bad frames discarded.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.rejected = 0

    def reset(self) -> None:
        """Forget partial input (after a timeout the rest of a late frame is garbage)."""
        self._buf.clear()

    def feed(self, chunk: bytes) -> list[bytes]:
        """Add bytes; return every complete valid frame they finish, oldest first."""
        self._buf += chunk
        frames: list[bytes] = []
        while (frame := self._next()) is not None:
            frames.append(frame)
        return frames

    def _next(self) -> bytes | None:
        while True:
            start = self._buf.find(PREAMBLE)
            if start < 0:
                # Keep a possible partial preamble at the end for the next chunk.
                self._drop(max(0, len(self._buf) - (len(PREAMBLE) - 1)))
                return None
            self._drop(start)
            if len(self._buf) < HEADER_LEN:
                return None
            length = int.from_bytes(self._buf[5:7], "big")
            if not MIN_LEN <= length <= MAX_LEN:
                self._drop(1)
                continue
            if len(self._buf) < HEADER_LEN + length:
                return None
            frame = bytes(self._buf[: HEADER_LEN + length])
            if frame[-1] == checksum(frame[5:-1]):
                del self._buf[: len(frame)]
                return frame
            logger.debug("idcard: dropped frame with bad checksum (%d bytes)", len(frame))
            # Skip only one byte: the real frame may start inside what we just tried.
            self._drop(1)

    def _drop(self, count: int) -> None:
        if count:
            self.rejected += 1
            del self._buf[:count]


class SamStatusError(DriverError):
    """The SAM answered with a non-success SW3 (protocols §1.4).

    Attributes:
        code: the SW3 byte.
        meaning: the status text from the SAM specification.
    """

    code = -1
    meaning = "unknown status"

    def __init__(self, code: int | None = None) -> None:
        if code is not None:
            self.code = code
        super().__init__(f"SAM status {self.code:02X}: {self.meaning}")


class NoCardError(SamStatusError):
    """80: find card failed — no card on the antenna (or it is still halted)."""

    code, meaning = 0x80, "find card failed (no card)"


class SelectFailedError(SamStatusError):
    """81: select card failed — the card moved; restart with find."""

    code, meaning = 0x81, "select card failed"


class ReadFailedError(SamStatusError):
    """41: read failed — the card was removed during the read."""

    code, meaning = 0x41, "read card failed"


class NoContentError(SamStatusError):
    """91: this item has no content (e.g. no appended address)."""

    code, meaning = 0x91, "item has no content"


class HostChecksumError(SamStatusError):
    """10: the SAM saw a bad checksum in our frame."""

    code, meaning = 0x10, "checksum error in host frame"


class HostLengthError(SamStatusError):
    """11: the SAM saw a bad length in our frame."""

    code, meaning = 0x11, "length error in host frame"


class CommandRejectedError(SamStatusError):
    """21: bad command value or illegal sequence (e.g. read without select)."""

    code, meaning = 0x21, "command error or illegal sequence"


class NotPermittedError(SamStatusError):
    """23: operation not permitted."""

    code, meaning = 0x23, "operation not permitted"


class UnrecognisedError(SamStatusError):
    """24: the SAM could not classify the error."""

    code, meaning = 0x24, "unrecognised error"


class CardAuthError(SamStatusError):
    """31: the card failed to authenticate the SAM."""

    code, meaning = 0x31, "card failed to authenticate SAM"


class SamAuthError(SamStatusError):
    """32: the SAM failed to authenticate the card (fake or damaged card)."""

    code, meaning = 0x32, "SAM failed to authenticate card (fake or damaged card)"


class VerificationError(SamStatusError):
    """33: information verification error."""

    code, meaning = 0x33, "information verification error"


class UnknownCardTypeError(SamStatusError):
    """40: unrecognised card type."""

    code, meaning = 0x40, "unrecognised card type"


class RandomError(SamStatusError):
    """47: get-random failed."""

    code, meaning = 0x47, "get-random failed"


class SamSelfTestError(SamStatusError):
    """60: SAM self-test failed; it cannot accept commands (hardware fault)."""

    code, meaning = 0x60, "SAM self-test failed (hardware fault)"


class SamNotAuthorisedError(SamStatusError):
    """66: the SAM module is not activated."""

    code, meaning = 0x66, "SAM not authorised (module not activated)"


class CommunicationError(SamStatusError):
    """FF: communication failure inside the reader."""

    code, meaning = 0xFF, "communication failure"


STATUS_ERRORS: dict[int, type[SamStatusError]] = {
    cls.code: cls for cls in SamStatusError.__subclasses__()
}


def check_status(command: Command, response: SamResponse) -> SamResponse:
    """Return `response` if its SW3 means success for `command`, else raise the typed error.

    Raises:
        SamStatusError: a subclass per documented SW3, or the base class for an unknown one.
    """
    if response.sw3 == command.success:
        return response
    cls = STATUS_ERRORS.get(response.sw3)
    raise cls() if cls is not None else SamStatusError(response.sw3)
