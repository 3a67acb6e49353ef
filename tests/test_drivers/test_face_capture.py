"""'Look at the camera': `FaceService.capture` on real video files composed from the fixture photos.

Two real vision processes (spawned, with dlib) read two looping MJPG videos: one of a tenant's
photo in a hallway, one of the empty hallway. A capture answers through the same pipe as the
sightings, which keep flowing; uploaded photos are judged in a short-lived process of their own.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import cv2
import numpy as np
import pytest

from drivers.face import analysis, synth
from drivers.face.errors import FaceError, PhotoRejected, RejectReason
from drivers.face.matching import DEFAULT_THRESHOLD, TemplateIndex
from drivers.face.service import FaceService, analyse_photo_bytes, judge_frame
from drivers.face.types import FaceCapture, FaceSighting

FACES = Path(__file__).parent.parent / "fixtures" / "faces"
SIZE = (640, 360)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def obama() -> np.ndarray:
    return analysis.read_image(FACES / "obama.jpg")


@pytest.fixture(scope="module")
def reference(obama: np.ndarray) -> np.ndarray:
    return analysis.analyse_photo(obama).encoding


def _video(path: Path, frame: np.ndarray, n: int = 20) -> Path:
    return synth.write_video(path, [frame] * n)


def test_judge_frame_applies_the_photo_rules(obama: np.ndarray, reference: np.ndarray) -> None:
    scene = synth.background(SIZE)
    good = judge_frame(synth.place(scene, obama, (320, 260), 500))
    assert good.ok and good.reason is None and good.encoding is not None
    assert good.encoding.dtype == np.float32 and good.encoding.shape == (128,)
    assert float(np.linalg.norm(good.encoding - reference)) < DEFAULT_THRESHOLD
    assert 0 < good.quality <= 1
    crop = cv2.imdecode(np.frombuffer(good.crop_jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert crop is not None and 100 < crop.shape[1] < SIZE[0]  # the face, not the frame
    assert judge_frame(scene) == FaceCapture(False, "no_face")
    tiny = judge_frame(synth.place(scene, obama, (320, 200), 150))
    assert not tiny.ok and tiny.reason in {"no_face", "too_small"}
    blurred = cv2.GaussianBlur(synth.place(scene, obama, (320, 260), 500), (0, 0), 3)
    assert judge_frame(blurred).reason == "too_blurry"
    two = judge_frame(analysis.read_image(FACES / "two_people.jpg"))
    assert two == FaceCapture(False, "several_faces") and two.crop_jpeg == b""
    # Nothing biometric in the repr (logs).
    assert "crop" not in repr(good) and "encoding" not in repr(good)


async def test_capture_from_a_running_service(
    tmp_path: Path, obama: np.ndarray, reference: np.ndarray
) -> None:
    scene = synth.background(SIZE)
    with_face = _video(tmp_path / "tenant.avi", synth.place(scene, obama, (320, 260), 500))
    empty = _video(tmp_path / "empty.avi", scene)
    index = (reference.reshape(1, 128), ["A"], [False])
    async with (
        FaceService(with_face, templates=index, fps=10, loop=True, name="door") as door,
        FaceService(empty, fps=10, loop=True, name="hall") as hall,
    ):
        # The engine keeps recognising: the tenant is identified from the same frames.
        first = await asyncio.wait_for(anext(door.sightings()), 30)
        assert isinstance(first, FaceSighting) and first.occupant_id == "A"
        got, none = await asyncio.gather(door.capture(timeout=20), hall.capture(timeout=20))
        assert got.ok and got.reason is None and got.encoding is not None
        assert float(np.linalg.norm(got.encoding - reference)) < DEFAULT_THRESHOLD
        assert got.crop_jpeg.startswith(b"\xff\xd8") and got.quality > 0
        assert not none.ok and none.reason == RejectReason.NO_FACE.value
        assert none.encoding is None and none.crop_jpeg == b""
        # Two captures in a row, and the sightings queue never received a capture reply.
        again = await door.capture(timeout=20)
        assert again.ok
        assert door._queue is not None
        while not door._queue.empty():
            assert isinstance(door._queue.get_nowait(), FaceSighting)
        # A capture that cannot be answered in time says so instead of hanging.
        assert (await hall.capture(timeout=0.0001)).reason in {"timeout", "no_face"}
    with pytest.raises(FaceError, match="not running"):
        await door.capture()


async def test_photo_bytes_are_judged_in_a_child_process(reference: np.ndarray) -> None:
    face = await analyse_photo_bytes((FACES / "obama2.jpg").read_bytes())
    assert float(np.linalg.norm(face.encoding - reference)) < DEFAULT_THRESHOLD
    index = TemplateIndex(reference.reshape(1, 128), ["A"], [False])
    assert index.match(face.encoding) is not None
    with pytest.raises(PhotoRejected) as refused:
        await analyse_photo_bytes(b"not an image at all")
    assert refused.value.reason is RejectReason.UNREADABLE
    with pytest.raises(PhotoRejected) as several:
        await analyse_photo_bytes((FACES / "two_people.jpg").read_bytes())
    assert several.value.reason is RejectReason.SEVERAL_FACES
