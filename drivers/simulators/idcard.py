"""SAM_V ID card reader simulator: answers find/select/read with the exact frames of §1.6."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from drivers.errors import FrameError
from drivers.idcard.frames import Command, FrameSplitter, encode_response, parse_command
from drivers.idcard.text import IdCardText, IdCardType, encode_text_block
from drivers.simulators.responder import ResponderDevice

logger = logging.getLogger(__name__)

PHOTO_LEN = 1024
SAM_ID_DATA = bytes.fromhex("05000100AFDC32014E61BC00D2029649")  # protocols §1.6 example


def sample_card(**changes: object) -> IdCardText:
    """A valid resident card (张三, 11010519491231002X, 长期) for demos and tests."""
    values: dict[str, object] = {
        "card_type": IdCardType.RESIDENT,
        "name": "张三",
        "sex": "1",
        "ethnicity": "01",
        "birth": dt.date(1949, 12, 31),
        "address": "北京市东城区景山前街4号",
        "id_number": "11010519491231002X",
        "issuer": "北京市公安局东城分局",
        "valid_from": dt.date(2015, 1, 1),
        "valid_to": None,
    } | changes
    return IdCardText(**values)  # type: ignore[arg-type]


def sample_photo(seed: int = 1) -> bytes:
    """A deterministic stand-in for the 1024-byte WLT photo (the real format is proprietary)."""
    return bytes((seed * 37 + i * 11) & 0xFF for i in range(PHOTO_LEN))


def read_reply(text_block: bytes, photo: bytes) -> bytes:
    """The complete `30 01` reply frame for a text block and photo (1295 bytes for 256+1024)."""
    lengths = len(text_block).to_bytes(2, "big") + len(photo).to_bytes(2, "big")
    return encode_response(0x90, lengths + text_block + photo)


class IdCardSimulator(ResponderDevice):
    """A SAM ID card reader on a pseudo-terminal.

    Args:
        link: stable path to expose as the serial port.
        baudrate: the only speed it answers at (set 9600 to exercise the fallback probe).
        halt_after_read: like many real readers, answer "no card" after a read until the card
            is lifted and presented again.

    Attributes:
        text_block: the 256 raw text bytes of the card on the antenna (None: no card). Tests may
            set invalid bytes directly to present a corrupt card.
        photo: the WLT blob returned with the text.
        status: SW3 overrides per command, e.g. `{Command.READ_TEXT_PHOTO: 0x41}`.
    """

    def __init__(
        self, link: Path, *, baudrate: int | None = 115200, halt_after_read: bool = False
    ) -> None:
        super().__init__(link, baudrate=baudrate)
        self.halt_after_read = halt_after_read
        self.text_block: bytes | None = None
        self.photo = sample_photo()
        self.status: dict[Command, int] = {}
        self._splitter = FrameSplitter()
        self._selected = False
        self._halted = False

    def insert(self, card: IdCardText | None = None, photo: bytes | None = None) -> None:
        """Put a card on the antenna (default: `sample_card()`)."""
        self.text_block = encode_text_block(card or sample_card())
        if photo is not None:
            self.photo = photo
        self._halted = self._selected = False

    def remove(self) -> None:
        """Lift the card off the antenna."""
        self.text_block = None
        self._halted = self._selected = False

    def respond(self, data: bytes) -> list[bytes]:
        """Answer every complete command frame in `data`."""
        replies = []
        for frame in self._splitter.feed(data):
            try:
                cmd, para, _ = parse_command(frame)
            except FrameError:
                replies.append(encode_response(0x10))
                continue
            replies.append(self._answer(cmd, para))
        return replies

    def _answer(self, cmd: int, para: int) -> bytes:
        try:
            command = Command((cmd, para))
        except ValueError:
            return encode_response(0x21)
        if command in self.status:
            return encode_response(self.status[command])
        handlers = {
            Command.FIND: self._find,
            Command.SELECT: self._select,
            Command.READ_TEXT_PHOTO: self._read,
            Command.SAM_ID: self._sam_id,
        }
        return handlers.get(command, self._ok)()

    def _ok(self) -> bytes:
        return encode_response(0x90)

    def _sam_id(self) -> bytes:
        return encode_response(0x90, SAM_ID_DATA)

    def _find(self) -> bytes:
        self._selected = False
        if self.text_block is None or self._halted:
            return encode_response(0x80)
        return encode_response(0x9F, bytes(4))

    def _select(self) -> bytes:
        if self.text_block is None:
            return encode_response(0x81)
        self._selected = True
        return encode_response(0x90, bytes(8))

    def _read(self) -> bytes:
        if self.text_block is None:
            return encode_response(0x41)
        if not self._selected:
            return encode_response(0x21)  # read without find+select, as the SAM refuses it
        self._selected = False
        self._halted = self.halt_after_read
        return read_reply(self.text_block, self.photo)
