"""Plain records the face engine hands to the gateway."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

Encoding = npt.NDArray[np.float32]


class Liveness(enum.StrEnum):
    """What the track's landmarks say about a live person (see `drivers.face.liveness`)."""

    PENDING = "pending"  # not observed long enough yet
    LIVE = "live"  # a blink or non-planar head motion was seen
    NOT_LIVE = "not_live"  # observed for the whole window without either (may still turn LIVE)


class Direction(enum.StrEnum):
    """Which way a track crossed the configured counting line."""

    IN = "in"
    OUT = "out"


class SightingEvent(enum.StrEnum):
    """Why a sighting was emitted."""

    IDENTIFIED = "identified"  # first encoding of the track was matched (or found unknown)
    CHANGED = "changed"  # a re-check changed the identity, or the liveness verdict changed
    CROSSED = "crossed"  # the track crossed the counting line
    ENDED = "ended"  # the track left the picture


@dataclass(frozen=True, slots=True)
class BBox:
    """A face rectangle in full-frame pixels."""

    x: int
    y: int
    w: int
    h: int

    @property
    def centre(self) -> tuple[float, float]:
        """The centre point."""
        return (self.x + self.w / 2, self.y + self.h / 2)

    def iou(self, other: BBox) -> float:
        """Intersection over union with `other` (0 when disjoint)."""
        ix = max(0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.w * self.h + other.w * other.h - inter
        return inter / union if union > 0 else 0.0


@dataclass(frozen=True, slots=True)
class FaceQuality:
    """How good one face crop is for an encoding.

    Attributes:
        width: face width in pixels of the frame it was measured in.
        sharpness: variance of the Laplacian of the face resized to 128×128 (scale-independent).
        yaw: -1 (turned fully left) … 0 (frontal) … 1, from the nose against the jaw line.
        score: 0…1 combination used to pick a track's best frame.
    """

    width: int
    sharpness: float
    yaw: float
    score: float


@dataclass(frozen=True, slots=True)
class FaceSighting:
    """One thing the engine has to say about one face track.

    Attributes:
        track_id: stable for as long as the face stays in view.
        event: why this sighting was emitted.
        occupant_id: the matched occupant, or None for an unknown face (or no templates).
        distance: distance to the best occupant's template (None before any encoding).
        direction: set once the track crossed the counting line, if one is configured.
        bbox: the face rectangle in the frame this sighting comes from.
        quality: quality of the frame the current identity was computed from.
        monotonic: `time.monotonic()` when the sighting was produced.
        frame_monotonic: capture time of the frame it was computed from (latency budgets).
        liveness: the liveness verdict of the track so far.
        encoding: for unknown faces only, the 128-d encoding, kept in memory for stranger
            clustering; never stored with an image, never sent upstream.
    """

    track_id: int
    event: SightingEvent
    occupant_id: str | None
    distance: float | None
    direction: Direction | None
    bbox: BBox
    quality: FaceQuality | None
    monotonic: float
    frame_monotonic: float
    liveness: Liveness
    encoding: Encoding | None = field(default=None, repr=False, compare=False)


#: `FaceCapture.reason` codes besides the photo ones of `drivers.face.errors.RejectReason`.
CAPTURE_NO_FRAME = "no_frame"  # the camera has not delivered a picture (offline, starting)
CAPTURE_TIMEOUT = "timeout"  # the vision process did not answer in time


@dataclass(frozen=True, slots=True)
class FaceCapture:
    """One "look at the camera" for enrolment: the latest frame judged like an enrolment photo.

    Kept in memory only: the crop is never written to disk or logs (it is not in the repr).

    Attributes:
        ok: exactly one large, sharp, frontal face was found and encoded.
        reason: why not (a `RejectReason` value, ``no_frame`` or ``timeout``); None when ok.
        crop_jpeg: the face with a margin, JPEG-encoded (empty when no face was found).
        encoding: the 128-d float32 encoding when ok, else None.
        quality: the face's quality score 0…1 (0 when no face was found).
    """

    ok: bool
    reason: str | None
    crop_jpeg: bytes = field(default=b"", repr=False, compare=False)
    encoding: Encoding | None = field(default=None, repr=False, compare=False)
    quality: float = 0.0
