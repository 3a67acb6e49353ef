"""PN532 (HSU) simulator: ACKs and answers the real frames of the commands a reader sends."""

from __future__ import annotations

from pathlib import Path

from drivers.pn532 import (
    ACK,
    ERROR_BODY,
    GET_FIRMWARE_VERSION,
    HOST_TFI,
    IN_LIST_PASSIVE_TARGET,
    NACK,
    RF_CONFIGURATION,
    SAM_CONFIGURATION,
    FrameKind,
    FrameSplitter,
    encode_frame,
    encode_response,
)
from drivers.simulators.responder import ResponderDevice

FIRMWARE = bytes.fromhex("32010607")  # IC 32, v1.6, supports ISO 14443A/B + ISO 18092


class Pn532Simulator(ResponderDevice):
    """A PN532 on a pseudo-terminal.

    Args:
        link: stable path to expose as the serial port.
        needs_wakeup: ignore commands until a 0x55 wake-up byte arrived (LowVbat after power-on).

    Attributes:
        uid: the UID of the card in the field (None: empty field).
        atqa, sak: the card's ISO 14443A answers (MIFARE Classic 1K defaults).
        nacks: how many of the next commands get a NACK instead of an ACK.
        commands: the command codes received, in order.
    """

    def __init__(self, link: Path, *, needs_wakeup: bool = True) -> None:
        super().__init__(link)
        self.needs_wakeup = needs_wakeup
        self.awake = not needs_wakeup
        self.uid: bytes | None = None
        self.atqa = 0x0004
        self.sak = 0x08
        self.nacks = 0
        self.commands: list[int] = []
        self._splitter = FrameSplitter()

    def unplug(self) -> None:
        """Vanish; like a power cycle the chip sleeps again when plugged back."""
        super().unplug()
        self.awake = not self.needs_wakeup

    def respond(self, data: bytes) -> list[bytes]:
        """Answer every complete command frame in `data` with ACK + reply."""
        if b"\x55" in data:
            self.awake = True
        if not self.awake:
            return []
        replies: list[bytes] = []
        for frame in self._splitter.feed(data):
            if frame.kind is not FrameKind.DATA or frame.body[0] != HOST_TFI:
                continue  # an ACK from the host aborts; nothing is pending here
            replies += self._answer(frame.body[1], frame.body[2:])
        return replies

    def _answer(self, command: int, params: bytes) -> list[bytes]:
        if self.nacks > 0:
            self.nacks -= 1
            return [NACK]
        self.commands.append(command)
        handlers = {
            GET_FIRMWARE_VERSION: lambda: FIRMWARE,
            SAM_CONFIGURATION: lambda: b"",
            RF_CONFIGURATION: lambda: b"",
            IN_LIST_PASSIVE_TARGET: self._targets,
        }
        handler = handlers.get(command)
        if handler is None:
            return [ACK, encode_frame(ERROR_BODY)]
        return [ACK, encode_response(command, handler())]

    def _targets(self) -> bytes:
        if self.uid is None:
            return b"\x00"
        return (
            b"\x01\x01" + self.atqa.to_bytes(2, "big") + bytes([self.sak, len(self.uid)]) + self.uid
        )
