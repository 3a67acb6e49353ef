"""The per-frame face pipeline: motion gate → HOG on a small frame → track → encode once.

Plain face_recognition detects and encodes every face in every frame at full size (≈ 0.5 s a
frame here). This engine spends that only where it matters:

1. a frame-difference motion gate on a 160-px thumbnail (≈ 0.1 ms) skips empty, still scenes;
2. HOG detection (upsample 0) on the frame downscaled to `detect_width` (≈ 18 ms at 640 px);
3. an IoU/centroid tracker, so each face is encoded once, on the first frame of good enough
   quality, and again only when its identity is in doubt and a clearly better frame comes;
4. 68-point landmarks on every tracked frame (≈ 2 ms) for quality and liveness.

Synchronous and single-threaded on purpose: `drivers.face.service` runs it in its own process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from drivers.face import analysis
from drivers.face.analysis import Image
from drivers.face.counting import CountingLine
from drivers.face.liveness import LivenessCheck
from drivers.face.matching import DEFAULT_THRESHOLD, Match, TemplateIndex
from drivers.face.tracking import Track, Tracker
from drivers.face.types import BBox, FaceQuality, FaceSighting, Liveness, SightingEvent


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Tuning of the face engine (the gateway maps its config section onto this).

    Args:
        threshold: maximum template distance for a match (see `matching.DEFAULT_THRESHOLD`).
        detect_width: width the frame is scaled to for HOG; faces must be ≥ 80 px there.
        motion_width: thumbnail width of the motion gate.
        motion_fraction: share of thumbnail pixels that must change to open the gate.
        min_face_width: faces narrower than this (full-frame px) are tracked, never encoded.
        min_quality: quality score at which a track is encoded at once.
        max_wait_s: encode the track anyway after this long, whatever its quality.
        doubt_margin: a distance this close to the threshold, or a runner-up occupant this
            close to the best, puts the identity in doubt and allows re-checks.
        max_rechecks: re-encodings allowed per track.
        recheck_interval_s: minimum time between two encodings of one track.
        liveness: settings of each track's liveness check.
        line: the counting line, when the camera sees both directions.
    """

    threshold: float = DEFAULT_THRESHOLD
    detect_width: int = 640
    motion_width: int = 160
    motion_fraction: float = 0.002
    min_face_width: int = 60
    min_quality: float = 0.45
    max_wait_s: float = 0.5
    doubt_margin: float = 0.06
    max_rechecks: int = 3
    recheck_interval_s: float = 0.3
    liveness: LivenessCheck = field(default_factory=LivenessCheck)
    line: CountingLine | None = None


def _cut_by_edge(box: BBox, shape: tuple[int, ...]) -> bool:
    # A face running off the picture (someone stepping in, or too tall for the camera) has its
    # box clipped to the frame: its encoding would describe half a face and match nobody, and
    # the track would then be "decided" as a stranger. Such frames are never encoded, even
    # after `max_wait_s`.
    return box.x <= 0 or box.y <= 0 or box.x + box.w >= shape[1] or box.y + box.h >= shape[0]


class MotionGate:
    """Frame differencing on a thumbnail: is anything moving?

    Args:
        width: thumbnail width.
        fraction: share of pixels that must change by more than `delta` grey levels.
        delta: per-pixel change that counts (above sensor noise and JPEG artefacts).
    """

    def __init__(self, width: int = 160, fraction: float = 0.002, delta: int = 18) -> None:
        self.width, self.fraction, self.delta = width, fraction, delta
        self._previous: Image | None = None

    def moved(self, gray: Image) -> bool:
        """Compare with the previous frame; the first frame always counts as motion."""
        scale = self.width / gray.shape[1]
        thumb = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        thumb = cv2.GaussianBlur(thumb, (3, 3), 0)
        previous, self._previous = self._previous, thumb
        if previous is None or previous.shape != thumb.shape:
            return True
        changed = np.count_nonzero(cv2.absdiff(thumb, previous) > self.delta)
        return bool(changed >= self.fraction * thumb.size)


class FaceEngine:
    """Turns frames into `FaceSighting`s.

    Args:
        config: tuning.
        index: the enrolled templates (None: every face is unknown).
    """

    def __init__(self, config: EngineConfig | None = None, index: TemplateIndex | None = None):
        self.config = config or EngineConfig()
        self.index = index
        self.gate = MotionGate(self.config.motion_width, self.config.motion_fraction)
        self.tracker = Tracker(liveness=self.config.liveness)
        self.stats = {"frames": 0, "gated": 0, "detections": 0, "encodings": 0}

    def set_index(self, index: TemplateIndex | None) -> None:
        """Swap the templates (after an enrolment or a wrong-match mark)."""
        self.index = index

    def process(self, bgr: Image, t: float) -> list[FaceSighting]:
        """Run one frame captured at monotonic `t`; return what is worth telling the gateway."""
        self.stats["frames"] += 1
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        if not self.gate.moved(gray) and not self.tracker.tracks:
            self.stats["gated"] += 1
            return []
        boxes = analysis.detect(gray, width=self.config.detect_width)
        self.stats["detections"] += 1
        seen, ended = self.tracker.update(boxes, t)
        rgb: list[Image] = []  # converted at most once, only if something gets encoded
        out = [s for tr in seen if (s := self._observe(tr, bgr, gray, rgb, t)) is not None]
        return out + [self._sighting(tr, SightingEvent.ENDED, t) for tr in ended]

    def _observe(
        self, track: Track, bgr: Image, gray: Image, rgb: list[Image], t: float
    ) -> FaceSighting | None:
        shape = analysis.shape_of(gray, track.bbox)
        points = analysis.landmark_array(shape)
        q = analysis.quality(gray, track.bbox, points)
        verdict = track.liveness.add(points, t)
        event: SightingEvent | None = None
        if not _cut_by_edge(track.bbox, gray.shape) and self._should_encode(track, q, t):
            if not rgb:
                rgb.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            event = self._identify(track, analysis.encode(rgb[0], shape), q, t)
        if track.encoding is not None and verdict is not track.verdict:
            event = event or SightingEvent.CHANGED
        track.verdict = verdict
        if self.config.line is not None and track.direction is None:
            track.direction = self.config.line.crossing(track.centres)
            if track.direction is not None:
                event = event or SightingEvent.CROSSED
        return self._sighting(track, event, t) if event else None

    def _should_encode(self, track: Track, q: FaceQuality, t: float) -> bool:
        cfg = self.config
        if q.width < cfg.min_face_width:
            return False
        if track.encoding is None:
            return q.score >= cfg.min_quality or t - track.first_seen >= cfg.max_wait_s
        better = track.encoded_quality is None or q.score >= track.encoded_quality.score + 0.1
        return (
            track.in_doubt
            and better
            and track.rechecks < cfg.max_rechecks
            and t - track.encoded_at >= cfg.recheck_interval_s
        )

    def _identify(
        self, track: Track, encoding: np.ndarray, q: FaceQuality, t: float
    ) -> SightingEvent | None:
        self.stats["encodings"] += 1
        first = track.encoding is None
        match = self.index.match(encoding) if self.index is not None else None
        previous = track.occupant_id
        track.rechecks += 0 if first else 1
        track.encoding, track.encoded_quality, track.encoded_at = encoding, q, t
        track.occupant_id = match.occupant_id if match else None
        track.distance = match.distance if match else None
        track.in_doubt = match is not None and self._doubtful(match)
        if first:
            return SightingEvent.IDENTIFIED
        return SightingEvent.CHANGED if track.occupant_id != previous else None

    def _doubtful(self, match: Match) -> bool:
        margin, threshold = self.config.doubt_margin, self.config.threshold
        near_threshold = abs(match.distance - threshold) <= margin
        ambiguous = match.runner_up - match.distance <= margin and match.distance <= threshold
        return near_threshold or ambiguous

    def _sighting(self, track: Track, event: SightingEvent, t: float) -> FaceSighting:
        unknown = track.occupant_id is None and track.encoding is not None
        return FaceSighting(
            track_id=track.id,
            event=event,
            occupant_id=track.occupant_id,
            distance=track.distance,
            direction=track.direction,
            bbox=track.bbox,
            quality=track.encoded_quality,
            monotonic=time.monotonic(),
            frame_monotonic=t,
            liveness=track.verdict if track.encoding is not None else Liveness.PENDING,
            encoding=track.encoding if unknown else None,
        )
