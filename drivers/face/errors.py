"""Errors of the face engine."""

from __future__ import annotations

import enum

from drivers.errors import DriverError


class FaceError(DriverError):
    """Base class of face-engine errors."""


class RejectReason(enum.StrEnum):
    """Why a photo cannot become a template (message keys ``face.reject.<reason>``)."""

    UNREADABLE = "unreadable"
    NO_FACE = "no_face"
    SEVERAL_FACES = "several_faces"
    TOO_SMALL = "too_small"
    TOO_BLURRY = "too_blurry"
    TURNED_AWAY = "turned_away"


class PhotoRejected(FaceError, ValueError):
    """A photo has no single usable face.

    Attributes:
        reason: the machine-readable reason.
        detail: numbers behind the refusal (face width, sharpness…), for the message.
    """

    def __init__(self, reason: RejectReason, detail: str = "") -> None:
        super().__init__(f"{reason.value}{': ' + detail if detail else ''}")
        self.reason = reason
        self.detail = detail
