"""Greedy IoU tracking with a centroid fallback, so each face is encoded once, not per frame."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from drivers.face.liveness import LivenessCheck
from drivers.face.types import BBox, Direction, Encoding, FaceQuality, Liveness


@dataclass(slots=True)
class Track:
    """One face followed across frames (mutable state of the engine)."""

    id: int
    bbox: BBox
    first_seen: float
    last_seen: float
    liveness: LivenessCheck
    missed: int = 0
    centres: list[tuple[float, float]] = field(default_factory=list)
    encoding: Encoding | None = None
    encoded_quality: FaceQuality | None = None
    encoded_at: float = 0.0
    rechecks: int = 0
    occupant_id: str | None = None
    distance: float | None = None
    in_doubt: bool = False
    verdict: Liveness = Liveness.PENDING
    direction: Direction | None = None


class Tracker:
    """Associates detections with tracks frame by frame.

    Args:
        min_iou: overlap for a detection to continue a track.
        max_jump: else, the largest centre move (in face widths) still taken as the same face
            (a slow engine sees a walking face jump between processed frames).
        max_missed: frames a track survives without a detection (detector flicker).
        liveness: factory settings copied into each new track's `LivenessCheck`.
    """

    def __init__(
        self,
        *,
        min_iou: float = 0.3,
        max_jump: float = 1.0,
        max_missed: int = 3,
        liveness: LivenessCheck | None = None,
    ) -> None:
        self.min_iou = min_iou
        self.max_jump = max_jump
        self.max_missed = max_missed
        self._liveness = liveness or LivenessCheck()
        self._ids = itertools.count(1)
        self.tracks: dict[int, Track] = {}

    def update(self, boxes: list[BBox], t: float) -> tuple[list[Track], list[Track]]:
        """Match `boxes` to tracks; return (tracks seen in this frame, tracks that ended)."""
        pairs = sorted(
            ((self._affinity(tr.bbox, b), tid, i) for tid, tr in self.tracks.items()
             for i, b in enumerate(boxes)),
            reverse=True,
        )
        used_t: set[int] = set()
        used_b: set[int] = set()
        seen: list[Track] = []
        for score, tid, i in pairs:
            if score <= 0 or tid in used_t or i in used_b:
                continue
            used_t.add(tid)
            used_b.add(i)
            seen.append(self._continue(self.tracks[tid], boxes[i], t))
        seen += [self._start(b, t) for i, b in enumerate(boxes) if i not in used_b]
        return seen, self._age(used_t | {tr.id for tr in seen})

    def _affinity(self, a: BBox, b: BBox) -> float:
        iou = a.iou(b)
        if iou >= self.min_iou:
            return 1.0 + iou
        (ax, ay), (bx, by) = a.centre, b.centre
        jump = ((ax - bx) ** 2 + (ay - by) ** 2) ** 0.5 / max(a.w, 1)
        return 1.0 - jump / self.max_jump if jump < self.max_jump else 0.0

    def _continue(self, track: Track, box: BBox, t: float) -> Track:
        track.bbox, track.last_seen, track.missed = box, t, 0
        track.centres.append(box.centre)
        return track

    def _start(self, box: BBox, t: float) -> Track:
        lv = self._liveness
        check = LivenessCheck(lv.window_s, lv.min_frames, lv.blink_ratio, lv.motion_threshold)
        track = Track(next(self._ids), box, t, t, check, centres=[box.centre])
        self.tracks[track.id] = track
        return track

    def _age(self, keep: set[int]) -> list[Track]:
        ended = []
        for tid in list(self.tracks):
            if tid in keep:
                continue
            track = self.tracks[tid]
            track.missed += 1
            if track.missed > self.max_missed:
                ended.append(self.tracks.pop(tid))
        return ended
