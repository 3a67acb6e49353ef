"""The face engine on real photos and real video files composed from them (slow-ish: ~20 s)."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import cv2
import numpy as np
import pytest

from drivers.camera import Camera
from drivers.face import analysis, synth
from drivers.face.engine import EngineConfig, FaceEngine
from drivers.face.errors import PhotoRejected, RejectReason
from drivers.face.matching import DEFAULT_THRESHOLD, TemplateIndex
from drivers.face.service import FaceService
from drivers.face.types import Liveness, SightingEvent

FACES = Path(__file__).parent.parent / "fixtures" / "faces"
A = ("obama.jpg", "obama2.jpg", "obama3.jpg", "obama_small.jpg")
B = ("biden.jpg", "biden2.jpg")
SIZE = (640, 360)


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    return {n: analysis.read_image(FACES / n) for n in A + B + ("two_people.jpg",)}


@pytest.fixture(scope="module")
def encodings(photos: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {n: analysis.analyse_photo(photos[n]).encoding for n in A + B}


@pytest.fixture(scope="module")
def index(encodings: dict[str, np.ndarray]) -> TemplateIndex:
    names = ["obama2.jpg", "obama3.jpg", "biden.jpg", "biden2.jpg"]
    return TemplateIndex(np.stack([encodings[n] for n in names]), ["A", "A", "B", "B"],
                         [False] * 4)


def test_default_threshold_separates_the_fixture_people(encodings: dict) -> None:
    same = [np.linalg.norm(encodings[x] - encodings[y]) for g in (A, B)
            for x, y in combinations(g, 2)]
    diff = [np.linalg.norm(encodings[x] - encodings[y]) for x in A for y in B]
    assert max(same) < DEFAULT_THRESHOLD - 0.05
    assert min(diff) > DEFAULT_THRESHOLD + 0.2


@pytest.mark.parametrize(("name", "change", "reason"), [
    ("two_people.jpg", None, RejectReason.SEVERAL_FACES),
    ("obama.jpg", "blur", RejectReason.TOO_BLURRY),
    ("obama.jpg", "tiny", RejectReason.TOO_SMALL),
    ("obama.jpg", "empty", RejectReason.NO_FACE),
])
def test_unusable_photos_are_refused_with_the_reason(
    photos: dict, name: str, change: str | None, reason: RejectReason
) -> None:
    img = photos[name]
    if change == "blur":
        img = cv2.GaussianBlur(img, (0, 0), 4)
    elif change == "tiny":
        img = cv2.resize(img, None, fx=0.3, fy=0.3, interpolation=cv2.INTER_AREA)
    elif change == "empty":
        img = synth.background((400, 300))
    with pytest.raises(PhotoRejected) as err:
        analysis.analyse_photo(img, upsample=2 if change == "tiny" else 1)
    assert err.value.reason is reason


def test_unreadable_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.jpg").write_text("not a jpeg")
    with pytest.raises(PhotoRejected, match="unreadable"):
        analysis.read_image(tmp_path / "x.jpg")


def _run(engine: FaceEngine, frames: list[np.ndarray], fps: float = 10.0) -> list:
    out = []
    for i, f in enumerate(frames):
        out += engine.process(f, i / fps)
    return out


async def test_engine_identifies_a_person_from_a_video_file_once_per_track(
    tmp_path: Path, photos: dict, index: TemplateIndex
) -> None:
    frames, _ = synth.entering(photos["obama.jpg"], SIZE, face_height=500, empty=3, steps=3,
                               visible=12, y=260)
    # 1.2 s of empty hallway at the end: the track must miss 4 processed frames to end, and a
    # loaded 2-core machine processes only a few frames a second.
    path = synth.write_video(tmp_path / "door.avi", frames + [synth.background(SIZE)] * 60)
    engine = FaceEngine(EngineConfig(), index)
    sightings = []
    async with Camera(path, fps=50) as cam:  # fast, but the grabber keeps only the newest
        seq = 0
        while (frame := await cam.next_frame(seq, timeout=5)) is not None:
            seq = frame.seq
            sightings += engine.process(frame.image, frame.seq / 10)
    ident = [s for s in sightings if s.event is SightingEvent.IDENTIFIED]
    assert [s.occupant_id for s in ident] == ["A"]
    assert ident[0].distance is not None and ident[0].distance < DEFAULT_THRESHOLD
    assert ident[0].encoding is None  # known faces keep no encoding
    assert sightings[-1].event is SightingEvent.ENDED
    assert engine.stats["encodings"] <= 2 < engine.stats["detections"]


def test_motion_gate_skips_a_still_empty_scene(index: TemplateIndex) -> None:
    engine = FaceEngine(EngineConfig(), index)
    assert _run(engine, [synth.background(SIZE)] * 10) == []
    assert engine.stats["gated"] == 9  # the first frame always counts as motion


def test_unknown_face_carries_its_encoding_for_stranger_clustering(photos: dict,
                                                                  encodings: dict) -> None:
    only_b = TemplateIndex(np.stack([encodings["biden.jpg"]]), ["B"], [False])
    scene = synth.background(SIZE)
    frames = [synth.place(scene, photos["obama.jpg"], (320, 260), 500)] * 4
    (first, *_) = _run(FaceEngine(EngineConfig(), only_b), frames)
    assert first.occupant_id is None and first.encoding is not None
    assert np.linalg.norm(first.encoding - encodings["obama.jpg"]) < 0.15


def _liveness(frames: list[np.ndarray], index: TemplateIndex) -> Liveness:
    engine = FaceEngine(EngineConfig(), index)
    sightings = _run(engine, frames)
    return [s for s in sightings if s.event is not SightingEvent.ENDED][-1].liveness


def test_a_handheld_still_photo_is_not_live(photos: dict, index: TemplateIndex) -> None:
    rng = np.random.default_rng(3)
    still = synth.place(synth.background(SIZE), photos["obama.jpg"], (320, 260), 500)
    frames = [synth.handheld(still, rng) for _ in range(30)]  # 3 s at 10 fps
    assert _liveness(frames, index) is Liveness.NOT_LIVE


def test_alternating_shots_of_the_same_person_count_as_a_moving_head(
    photos: dict, index: TemplateIndex
) -> None:
    scene = synth.background(SIZE)
    shots = [synth.place(scene, photos[n], (320, 260), 500) for n in ("obama.jpg", "obama2.jpg")]
    assert _liveness(synth.sequence(shots, 10), index) is Liveness.LIVE


def test_a_blink_warped_into_the_photo_counts_as_live(photos: dict, index: TemplateIndex) -> None:
    # A 150-px face: on a 100-px one the warp moves the lids by a pixel, below landmark noise.
    still = synth.place(synth.background(SIZE), photos["obama.jpg"], (320, 260), 640)
    gray = cv2.cvtColor(still, cv2.COLOR_BGR2GRAY)
    points = analysis.landmark_array(analysis.shape_of(gray, analysis.detect(gray, width=640)[0]))
    amounts = [0, 0, 0, 0, 0, 0.6, 0.6, 0, 0, 0]
    frames = [synth.close_eyes(still, points, a) if a else still for a in amounts]
    engine = FaceEngine(EngineConfig(), index)
    _run(engine, frames)
    (track,) = engine.tracker.tracks.values()
    assert track.liveness.blinked
    assert track.liveness.max_residual < engine.config.liveness.motion_threshold  # not motion


async def test_face_service_runs_camera_and_engine_in_a_child_process(
    tmp_path: Path, photos: dict, index: TemplateIndex
) -> None:
    frames, _ = synth.entering(photos["biden2.jpg"], SIZE, face_height=500, empty=2, steps=2,
                               visible=10, y=260)
    path = synth.write_video(tmp_path / "door.avi", frames + [synth.background(SIZE)] * 8)
    matrix, ids = index.positive_rows()
    async with FaceService(path, templates=(matrix, list(ids), [False] * len(ids)),
                           fps=10) as faces:
        got = [s async for s in _until_ended(faces)]
        assert faces.health().frames > 0
    assert any(s.occupant_id == "B" for s in got)


async def _until_ended(faces: FaceService):  # type: ignore[no-untyped-def]
    async for s in faces.sightings():
        yield s
        if s.event is SightingEvent.ENDED:
            return
