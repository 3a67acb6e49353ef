"""Liveness over a face track: a blink, or head motion that a flat picture cannot make.

What it checks, frame by frame, on dlib's 68 landmarks:

* **Blink**: the eye aspect ratio (EAR, Soukupová & Čech 2016) of both eyes drops below
  `blink_ratio` × the track's open-eye level and comes back up.
* **Non-planar motion**: any flat picture (a print, a phone screen) moved in front of the camera
  maps its landmarks from one frame to another by a homography (exactly, for a pinhole camera).
  A real head turning or nodding does not: the nose tip sits ~3 cm in front of the face outline,
  so it moves against the outline. We fit a homography from the track's first landmarks to the
  current ones and measure the residual, relative to the distance between the eyes.

What it does NOT stop (documented in the README): a video of the person replayed on a screen
(it blinks and turns), a 3-D mask, a print with the eyes cut out and real eyes behind it, a
curved/folded print waved about (no longer planar). It is a cheap filter against the common
"hold a photo up to the door" trick, not certified presentation-attack detection (ISO 30107).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from drivers.face.analysis import Landmarks
from drivers.face.types import Liveness

_LEFT_EYE = slice(36, 42)
_RIGHT_EYE = slice(42, 48)


def eye_aspect_ratio(points: Landmarks) -> float:
    """Mean EAR of both eyes: ~0.25-0.35 open, < 0.15 closed."""
    return (_ear(points[_LEFT_EYE]) + _ear(points[_RIGHT_EYE])) / 2


def _ear(eye: Landmarks) -> float:
    vertical = np.linalg.norm(eye[1] - eye[5]) + np.linalg.norm(eye[2] - eye[4])
    horizontal = np.linalg.norm(eye[0] - eye[3])
    return float(vertical / (2 * horizontal)) if horizontal > 0 else 0.0


def interocular(points: Landmarks) -> float:
    """Distance between the eye centres, the unit of landmark residuals."""
    return float(np.linalg.norm(points[_LEFT_EYE].mean(0) - points[_RIGHT_EYE].mean(0)))


def planar_residual(reference: Landmarks, points: Landmarks) -> float:
    """RMS error of the best homography reference → points, in inter-ocular distances.

    Measured: a jittered, tilted print gives 0.02-0.04 (landmark noise); two shots of the same
    person 0.12.
    """
    # The eyes are excluded: a blink is non-planar too, but it is the blink test's business.
    keep = np.r_[0:36, 48:68]
    src, dst = reference[keep], points[keep]
    matrix, _ = cv2.findHomography(src, dst, 0)
    if matrix is None:
        return 0.0
    projected = cv2.perspectiveTransform(src.reshape(-1, 1, 2), matrix).reshape(-1, 2)
    rms = float(np.sqrt(np.mean(np.sum((projected - dst) ** 2, axis=1))))
    return rms / max(interocular(points), 1e-6)


@dataclass(slots=True)
class LivenessCheck:
    """Accumulates one track's landmarks and gives its verdict.

    Args:
        window_s: seconds of observation after which, without evidence, the verdict is NOT_LIVE.
        min_frames: frames needed before NOT_LIVE can be given (a slow engine sees few).
        blink_ratio: EAR below this fraction of the open-eye level counts as closed.
        motion_threshold: planar residual (inter-ocular units) that counts as a real head
            (prints measured up to 0.042, so 0.07 leaves a margin).
    """

    window_s: float = 2.0
    min_frames: int = 6
    blink_ratio: float = 0.7
    motion_threshold: float = 0.07
    _reference: Landmarks | None = None
    _start: float = 0.0
    _frames: int = 0
    _ears: list[float] = field(default_factory=list)
    _closed: bool = False
    blinked: bool = False
    max_residual: float = 0.0

    def add(self, points: Landmarks, t: float) -> Liveness:
        """Feed one frame's landmarks at monotonic time `t`; return the verdict so far."""
        if self._reference is None:
            self._reference, self._start = points, t
        self._frames += 1
        self._blink(eye_aspect_ratio(points))
        self.max_residual = max(self.max_residual, planar_residual(self._reference, points))
        return self.verdict(t)

    def verdict(self, t: float) -> Liveness:
        """LIVE once evidence was seen; NOT_LIVE after the window without it; else PENDING."""
        if self.blinked or self.max_residual >= self.motion_threshold:
            return Liveness.LIVE
        if t - self._start >= self.window_s and self._frames >= self.min_frames:
            return Liveness.NOT_LIVE
        return Liveness.PENDING

    def _blink(self, ear: float) -> None:
        self._ears.append(ear)
        # The open-eye level: a high percentile, so a long blink does not drag it down.
        open_level = float(np.percentile(self._ears, 90))
        if ear < self.blink_ratio * open_level:
            self._closed = True
        elif self._closed and ear > 0.9 * open_level:
            self.blinked = True  # closed, then open again: a blink, not a squinting photo
