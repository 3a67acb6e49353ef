"""Face recognition at the door: detection, tracking, matching, liveness, strangers.

The heavy parts (dlib HOG detection, landmarks, the 128-d ResNet encoding) run in a separate
process (`drivers.face.service.FaceService`) because dlib holds the GIL for the whole of an
encoding (≈ 100 ms measured here): in a thread it would stall card decisions on the event loop.
Everything else in this package is plain numpy logic the gateway can use in-process.
"""

from __future__ import annotations

from drivers.face.types import (
    BBox,
    Direction,
    FaceQuality,
    FaceSighting,
    Liveness,
    SightingEvent,
)

__all__ = ["BBox", "Direction", "FaceQuality", "FaceSighting", "Liveness", "SightingEvent"]
