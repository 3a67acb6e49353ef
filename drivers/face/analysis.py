"""dlib models and the per-face measurements: detection, landmarks, quality, encoding.

The model files come from the ``face_recognition_models`` package. It is located with
`importlib.util.find_spec`, which does not execute the package: its ``__init__`` imports
``pkg_resources``, which setuptools ≥ 81 no longer ships. Nothing is ever downloaded.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import dlib
import numpy as np
import numpy.typing as npt

from drivers.face.errors import FaceError, PhotoRejected, RejectReason
from drivers.face.types import BBox, Encoding, FaceQuality

Image = npt.NDArray[Any]  # what OpenCV hands out (uint8 in practice)
Landmarks = npt.NDArray[np.float32]  # 68×2, full-frame pixels

# Measured on the fixture photos: sharp portraits score 140-660, the same blurred (Gaussian
# sigma 3 px) 4-78. A frontal-ish portrait (obama2.jpg) has a yaw of 0.50.
MIN_SHARPNESS = 60.0
MIN_FACE_WIDTH = 80  # dlib's HOG window; the encoder's 150-px chip is upsampled below this
MAX_YAW = 0.6
#: Photos and frames are judged at ≤ this many pixels: full-resolution phone photos would take
#: seconds to scan.
PHOTO_MAX_SIDE = 1280


def model_dir() -> Path:
    """The folder of the dlib model files shipped by ``face_recognition_models``."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FaceError("the face_recognition_models package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


@dataclass(frozen=True, slots=True)
class Models:
    """The three dlib models, loaded once per process (≈ 100 MB, ≈ 0.5 s)."""

    detector: dlib.fhog_object_detector
    landmarks: dlib.shape_predictor
    encoder: dlib.face_recognition_model_v1


@functools.cache
def models() -> Models:
    """Load (once) and return the dlib models."""
    folder = model_dir()
    try:
        return Models(
            detector=dlib.get_frontal_face_detector(),
            landmarks=dlib.shape_predictor(str(folder / "shape_predictor_68_face_landmarks.dat")),
            encoder=dlib.face_recognition_model_v1(
                str(folder / "dlib_face_recognition_resnet_model_v1.dat")
            ),
        )
    except RuntimeError as err:
        raise FaceError(f"cannot load dlib models from {folder}: {err}") from err


def detect(gray: Image, *, width: int, upsample: int = 0) -> list[BBox]:
    """HOG face detection on `gray` downscaled to `width` pixels; boxes in `gray`'s pixels.

    Args:
        gray: the full frame, grayscale.
        width: detection width; a face must be ≥ 80 px at this scale (dlib's HOG window).
        upsample: dlib's pyramid upsampling (each step ≈ 4× the cost).
    """
    scale = min(1.0, width / gray.shape[1])
    small = (
        gray
        if scale == 1.0
        else cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    )
    rects = models().detector(small, upsample)
    return [_to_bbox(r, scale, gray.shape) for r in rects]


def _to_bbox(rect: dlib.rectangle, scale: float, shape: tuple[int, ...]) -> BBox:
    x0 = max(0, int(rect.left() / scale))
    y0 = max(0, int(rect.top() / scale))
    x1 = min(shape[1], int(rect.right() / scale))
    y1 = min(shape[0], int(rect.bottom() / scale))
    return BBox(x0, y0, max(1, x1 - x0), max(1, y1 - y0))


def shape_of(gray: Image, box: BBox) -> dlib.full_object_detection:
    """The 68-point landmark shape of the face in `box` (≈ 2 ms)."""
    rect = dlib.rectangle(box.x, box.y, box.x + box.w, box.y + box.h)
    return models().landmarks(gray, rect)


def landmark_array(shape: dlib.full_object_detection) -> Landmarks:
    """The landmarks as a 68×2 float32 array."""
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def encode(rgb: Image, shape: dlib.full_object_detection) -> Encoding:
    """The 128-d encoding of one face (≈ 80-100 ms on this machine; holds the GIL)."""
    return np.asarray(models().encoder.compute_face_descriptor(rgb, shape), dtype=np.float32)


def quality(gray: Image, box: BBox, points: Landmarks) -> FaceQuality:
    """Size, sharpness and pose of one face, combined into a 0…1 score."""
    crop = gray[box.y : box.y + box.h, box.x : box.x + box.w]
    sharp = 0.0
    if crop.size:
        # A fixed crop size makes the variance comparable between near and far faces.
        norm = cv2.resize(crop, (128, 128), interpolation=cv2.INTER_AREA)
        sharp = float(cv2.Laplacian(norm, cv2.CV_64F).var())
    yaw = _yaw(points)
    size_s = min(1.0, box.w / 160)
    sharp_s = min(1.0, sharp / (2 * MIN_SHARPNESS))
    pose_s = max(0.0, 1.0 - abs(yaw) / (2 * MAX_YAW))
    return FaceQuality(box.w, sharp, yaw, round(min(size_s, sharp_s) * pose_s, 4))


def _yaw(points: Landmarks) -> float:
    # Nose tip (30) against the middle of the jaw ends (0, 16): 0 frontal, ±1 in profile.
    left, right, nose = points[0, 0], points[16, 0], points[30, 0]
    half = (right - left) / 2
    return float(np.clip((nose - (left + half)) / half, -1, 1)) if half > 0 else 1.0


@dataclass(frozen=True, slots=True)
class PhotoFace:
    """The single usable face found in a photo."""

    encoding: Encoding
    quality: FaceQuality
    bbox: BBox


def analyse_photo(bgr: Image, *, upsample: int = 1) -> PhotoFace:
    """Find exactly one usable face in a photo and encode it.

    Raises:
        PhotoRejected: no face, several faces, too small, too blurry or turned away.
    """
    bgr = shrink(bgr)
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    boxes = detect(gray, width=gray.shape[1], upsample=upsample)
    if not boxes:
        raise PhotoRejected(RejectReason.NO_FACE)
    if len(boxes) > 1:
        raise PhotoRejected(RejectReason.SEVERAL_FACES, str(len(boxes)))
    box = boxes[0]
    shape = shape_of(gray, box)
    q = quality(gray, box, landmark_array(shape))
    _check(q)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return PhotoFace(encode(rgb, shape), q, box)


def _check(q: FaceQuality) -> None:
    if q.width < MIN_FACE_WIDTH:
        raise PhotoRejected(RejectReason.TOO_SMALL, f"{q.width}px < {MIN_FACE_WIDTH}px")
    if q.sharpness < MIN_SHARPNESS:
        raise PhotoRejected(RejectReason.TOO_BLURRY, f"{q.sharpness:.0f} < {MIN_SHARPNESS:.0f}")
    if abs(q.yaw) > MAX_YAW:
        raise PhotoRejected(RejectReason.TURNED_AWAY, f"yaw {q.yaw:+.2f}")


def shrink(bgr: Image, max_side: int = PHOTO_MAX_SIDE) -> Image:
    """The image scaled down to at most `max_side` pixels (unchanged when smaller)."""
    scale = min(1.0, max_side / max(bgr.shape[:2]))
    if scale < 1.0:
        bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return bgr


def decode_image(data: bytes) -> Image:
    """Decode image bytes (JPEG, PNG…) to BGR, or raise `PhotoRejected(UNREADABLE)`."""
    buffer = np.frombuffer(data, dtype=np.uint8)
    img = cv2.imdecode(buffer, cv2.IMREAD_COLOR) if buffer.size else None
    if img is None:
        raise PhotoRejected(RejectReason.UNREADABLE, "not a decodable image")
    return np.asarray(img, dtype=np.uint8)


def read_image(path: Path) -> Image:
    """Decode an image file (BGR), or raise `PhotoRejected(UNREADABLE)`."""
    return decode_image(path.read_bytes() if path.is_file() else b"")
