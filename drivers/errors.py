"""Exceptions raised by the hardware drivers.

Every driver translates the errors of the library it wraps (pyserial, OpenCV, libosdp, gpiod) into
one of these at its boundary, so callers never see a third-party exception type.
"""

from __future__ import annotations


class DriverError(Exception):
    """Base class of every error a driver raises."""


class ReaderDisconnected(DriverError, ConnectionError):
    """The device vanished (USB unplugged, port closed) or could not be opened."""


class ReaderTimeout(DriverError, TimeoutError):
    """The device did not answer within the command's time limit."""


class FrameError(DriverError, ValueError):
    """Bytes on the line do not form a valid frame (bad framing, checksum or length).

    Attributes:
        raw: the offending bytes, kept for diagnostics (never logged at INFO: may hold a card UID).
    """

    def __init__(self, message: str, raw: bytes = b"") -> None:
        super().__init__(message)
        self.raw = raw
