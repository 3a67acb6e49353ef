"""The numpy side of the face engine: 1:N matching, tracking, counting, strangers, liveness maths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from drivers.face.counting import CountingLine, DoorCycleCounter
from drivers.face.liveness import LivenessCheck, eye_aspect_ratio, planar_residual
from drivers.face.matching import TemplateIndex
from drivers.face.strangers import StrangerClusters
from drivers.face.tracking import Tracker
from drivers.face.types import BBox, Direction, FaceSighting, Liveness, SightingEvent

RNG = np.random.default_rng(7)


def _people(n: int) -> np.ndarray:
    return RNG.normal(0, 0.075, (n, 128)).astype(np.float32) + 0.1


def test_match_picks_the_nearest_occupant_over_several_templates() -> None:
    base = _people(3)
    matrix = np.concatenate([base, base[:1] + 0.01])
    index = TemplateIndex(matrix, ["a", "b", "c", "a"], [False] * 4, threshold=0.5)
    m = index.match(base[1] + 0.005)
    assert m.occupant_id == "b"
    assert m.distance < 0.1 < m.runner_up


def test_nothing_within_threshold_is_unknown_with_its_distance() -> None:
    base = _people(2)
    index = TemplateIndex(base, ["a", "b"], [False, False], threshold=0.5)
    m = index.match(base[0] + 0.2)
    assert m.occupant_id is None
    assert m.distance == pytest.approx(np.linalg.norm(np.full(128, 0.2)), rel=1e-4)


def test_negative_template_vetoes_only_that_occupant() -> None:
    a, b = _people(2)
    probe = a + 0.01
    rows = np.stack([a, b, probe + 0.02])
    index = TemplateIndex(rows, ["a", "b", "a"], [False, False, True], threshold=0.5)
    m = index.match(probe)
    assert m.occupant_id is None
    assert m.vetoed == ("a",)
    # b is still matched by its own face despite a's negative template.
    assert index.match(b).occupant_id == "b"


def test_empty_index_matches_nobody() -> None:
    index = TemplateIndex(np.empty((0, 128), np.float32), [], [])
    assert index.match(np.zeros(128, np.float32)).occupant_id is None
    assert len(index) == 0


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="same length"):
        TemplateIndex(np.zeros((2, 128)), ["a"], [False, False])


# Real dlib encodings have components within ±0.3 (±0.25 here) (norm ≈ 1.4): the float32 expansion
# |a|²+|b|²-2ab is accurate to 1e-3 there.
@settings(max_examples=25)
@given(arrays(np.float32, (40, 128), elements=st.floats(-0.25, 0.25, width=32)),
       arrays(np.float32, 128, elements=st.floats(-0.25, 0.25, width=32)))
def test_matrix_distances_equal_per_row_distances(matrix: np.ndarray, q: np.ndarray) -> None:
    index = TemplateIndex(matrix, [str(i % 7) for i in range(40)], [False] * 40)
    naive = np.linalg.norm(matrix.astype(np.float64) - q, axis=1)
    assert np.allclose(index.distances(q), naive, atol=2e-3)
    assert index.match(q).distance == pytest.approx(index.match_naive(q).distance, abs=2e-3)


def test_tracker_follows_overlapping_boxes_and_ends_lost_tracks() -> None:
    tracker = Tracker(max_missed=1)
    (t1,), _ = tracker.update([BBox(100, 100, 80, 80)], 0.0)
    (t2,), _ = tracker.update([BBox(110, 104, 80, 80)], 0.1)
    assert t1.id == t2.id
    seen, ended = tracker.update([BBox(600, 100, 80, 80)], 0.2)  # far away: a new face
    assert seen[0].id != t1.id and ended == []
    _, ended = tracker.update([BBox(600, 100, 80, 80)], 0.3)
    assert [t.id for t in ended] == [t1.id]


def test_counting_line_gives_direction_only_when_crossed() -> None:
    line = CountingLine(axis="x", position=0.5, inward=1, frame_size=(1000, 500))
    assert line.crossing([(300, 0), (450, 0)]) is None
    assert line.crossing([(300, 0), (700, 0)]) is Direction.IN
    assert line.crossing([(700, 0), (300, 0)]) is Direction.OUT
    with pytest.raises(ValueError, match="axis"):
        CountingLine(axis="z")


def _sighting(track: int, t: float) -> FaceSighting:
    return FaceSighting(track, SightingEvent.IDENTIFIED, None, None, None, BBox(0, 0, 1, 1),
                        None, t, t, Liveness.PENDING)


def test_door_cycle_counts_distinct_faces_including_the_lead_in() -> None:
    counter = DoorCycleCounter(lead_s=2.0)
    counter.sighting(_sighting(1, 5.0))
    counter.sighting(_sighting(9, 1.0))  # long before: not part of this cycle
    counter.door_opened(6.0)
    counter.sighting(_sighting(2, 6.5))
    counter.sighting(_sighting(2, 6.7))
    assert counter.door_closed() == 2
    counter.door_opened(20.0)
    assert counter.door_closed() == 0


def test_strangers_join_close_faces_and_count_days() -> None:
    a, b = _people(2)
    clusters = StrangerClusters(join_distance=0.45)
    day1 = datetime(2025, 3, 1, 22, tzinfo=UTC)
    c1 = clusters.add(a, day1)
    c2 = clusters.add(a + 0.01, day1 + timedelta(days=1))
    c3 = clusters.add(b, day1)
    assert c1 is c2 and c3 is not c1
    assert c1.samples == 2 and len(c1.days_seen) == 2
    assert np.allclose(c1.centroid, a + 0.005, atol=1e-5)
    assert clusters.recurring(2) == [c1]
    assert clusters.purge(day1 + timedelta(hours=1)) == [c3]


def _face_points() -> np.ndarray:
    # A crude 3-D face: outline on a plane, nose sticking out (z), eyes as ellipses.
    rng = np.random.default_rng(1)
    pts = np.zeros((68, 3), np.float32)
    pts[:, :2] = rng.uniform(-1, 1, (68, 2))
    pts[27:36, 2] = 0.6  # nose bridge and tip
    for start, cx in ((36, -0.4), (42, 0.4)):
        angles = np.linspace(0, 2 * np.pi, 7)[:6]
        pts[start : start + 6, 0] = cx + 0.15 * np.cos(angles)
        pts[start : start + 6, 1] = -0.3 + 0.05 * np.sin(angles)
        pts[start : start + 6, 2] = 0
    return pts


def _project(pts: np.ndarray, yaw_deg: float) -> np.ndarray:
    rot, _ = cv2.Rodrigues(np.array([0.0, np.radians(yaw_deg), 0.0]))
    p = pts @ rot.T
    p[:, 2] += 6  # camera 6 units away
    return (300 * p[:, :2] / p[:, 2:3] + 320).astype(np.float32)


def test_a_flat_picture_has_no_planar_residual_but_a_turning_head_does() -> None:
    face = _face_points()
    flat = face.copy()
    flat[:, 2] = 0
    tilt = cv2.getPerspectiveTransform(
        np.float32([[0, 0], [1, 0], [1, 1], [0, 1]]),
        np.float32([[0.02, 0], [1, 0.03], [0.98, 1], [0, 0.97]]))
    print_ref = _project(flat, 0)
    print_moved = cv2.perspectiveTransform(print_ref.reshape(-1, 1, 2), tilt).reshape(-1, 2)
    assert planar_residual(print_ref, print_moved) < 0.01
    assert planar_residual(_project(face, 0), _project(face, 20)) > 0.07


def test_liveness_window_gives_not_live_then_a_blink_makes_it_live() -> None:
    open_eyes = _project(_face_points(), 0)
    closed = open_eyes.copy()
    for start in (36, 42):
        centre_y = closed[start : start + 6, 1].mean()
        closed[start : start + 6, 1] = centre_y + 0.2 * (closed[start : start + 6, 1] - centre_y)
    assert eye_aspect_ratio(closed) < 0.5 * eye_aspect_ratio(open_eyes)
    check = LivenessCheck(window_s=1.0, min_frames=5)
    verdicts = [check.add(open_eyes, i * 0.1) for i in range(12)]
    assert verdicts[0] is Liveness.PENDING and verdicts[-1] is Liveness.NOT_LIVE
    check.add(closed, 1.3)
    assert check.add(open_eyes, 1.4) is Liveness.LIVE  # closed then open again: a blink
