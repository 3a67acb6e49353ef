"""`doorgate bench face`: decision latency, 1:N matching time and memory, as JSON.

Latency is "face first fully visible → decision" at 720p. Frames are generated on a virtual
camera clock (frame i exists from t0 + i/fps): whenever a pipeline is ready it takes the newest
frame, as the camera thread would give it, so a pipeline busy with an earlier frame pays for it.
The scene: an empty hallway, a person sliding in with the face cut by the frame edge (motion,
no full face), then the whole face. The naive pipeline is plain face_recognition on every
frame (``face_locations`` at full size with its default upsample of 1, ``face_encodings``,
``face_distance``), measured in the same run against the same templates.
"""

from __future__ import annotations

import gc
import statistics
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from drivers.face import synth
from drivers.face.analysis import Image, analyse_photo, read_image
from drivers.face.engine import EngineConfig, FaceEngine
from drivers.face.matching import TemplateIndex

DEFAULT_PHOTOS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "faces"
SIZE = (1280, 720)
FPS = 25.0
_ENROLLED = {"A": ("obama2.jpg", "obama3.jpg"), "B": ("biden.jpg", "biden2.jpg")}
_PROBE = "obama.jpg"


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def synthetic_templates(
    real: npt.NDArray[np.float32], n: int, rng: np.random.Generator
) -> npt.NDArray[np.float32]:
    """`n` made-up people around the real encodings, ~0.85 away from each (like strangers)."""
    base = real[rng.integers(0, len(real), n)]
    noise = rng.normal(0, 0.075, (n, real.shape[1])).astype(np.float32)
    return (base + noise).astype(np.float32)


def build_index(photos: Path, n: int, seed: int = 0) -> tuple[TemplateIndex, dict[str, Any]]:
    """Real templates of A and B plus synthetic ones up to `n` rows."""
    rows, ids = [], []
    for occupant, names in _ENROLLED.items():
        for name in names:
            rows.append(analyse_photo(read_image(photos / name)).encoding)
            ids.append(occupant)
    real = np.stack(rows)
    extra = max(0, n - len(real))
    synth_rows = synthetic_templates(real, extra, np.random.default_rng(seed))
    matrix = np.concatenate([real, synth_rows])
    # Two templates per synthetic person, like occupants enrolled from two photos.
    ids += [f"s{i // 2:06d}" for i in range(extra)]
    index = TemplateIndex(matrix, ids, np.zeros(len(matrix), bool))
    return index, {"templates": len(matrix), "occupants": len(index.names)}


def time_matching(index: TemplateIndex, queries: npt.NDArray[np.float32]) -> dict[str, float]:
    """p50 of one 1:N query, matrix form vs per-row differences (ms)."""

    def p50(fn: Callable[[npt.NDArray[np.float32]], object]) -> float:
        times = []
        for q in queries:
            t = time.perf_counter()
            fn(q)
            times.append(time.perf_counter() - t)
        return statistics.median(times) * 1000

    matrix, naive = p50(index.match), p50(index.match_naive)
    return {
        "matrix_ms_p50": round(matrix, 3),
        "naive_ms_p50": round(naive, 3),
        "ratio": round(naive / matrix, 1),
    }


class VirtualCamera:
    """Frames on a clock: frame i is available from ``t0 + i / fps``."""

    def __init__(self, frames: list[Image], fps: float = FPS) -> None:
        self.frames, self.fps = frames, fps
        self.t0 = time.monotonic()
        self._pause = threading.Event()  # never set: its wait() is an interruptible sleep

    def newest(self, after: int) -> tuple[int, float] | None:
        """Index and capture time of the newest frame after `after` (waits for one)."""
        while True:
            i = int((time.monotonic() - self.t0) * self.fps)
            if i >= len(self.frames):
                return None
            if i > after:
                return i, self.t0 + i / self.fps
            self._pause.wait(self.t0 + (after + 1) / self.fps - time.monotonic())


Decide = Callable[[Image, float], bool]


def trial(frames: list[Image], first: int, decide: Decide) -> float | None:
    """Seconds from frame `first`'s capture to the decision, None if never decided."""
    camera, seen = VirtualCamera(frames), -1
    while (got := camera.newest(seen)) is not None:
        seen, captured = got
        if decide(frames[seen], captured) and seen >= first:
            return time.monotonic() - (camera.t0 + first / camera.fps)
    return None


def gated(index: TemplateIndex) -> Callable[[], Decide]:
    """A fresh engine per trial; decided when a sighting names occupant A."""

    def make() -> Decide:
        engine = FaceEngine(EngineConfig(), index)
        return lambda img, t: any(s.occupant_id == "A" for s in engine.process(img, t))

    return make


def naive(index: TemplateIndex) -> Callable[[], Decide]:
    """Plain face_recognition on every frame at full size."""
    with warnings.catch_warnings():  # face_recognition_models imports pkg_resources
        warnings.simplefilter("ignore")
        import face_recognition  # loads its own copy of the models: measured after RSS

    matrix, names = index.positive_rows()

    def decide(img: Image, _t: float) -> bool:
        rgb = np.ascontiguousarray(img[:, :, ::-1])
        for enc in face_recognition.face_encodings(rgb, face_recognition.face_locations(rgb)):
            d = face_recognition.face_distance(matrix, enc)
            if d.min() <= index.threshold and names[int(np.argmin(d))] == "A":
                return True
        return False

    return lambda: decide


def latency(make: Callable[[], Decide], probe: Image, trials: int) -> dict[str, Any]:
    """p50 latency over `trials` runs of the entering scene (ms)."""
    results = []
    for seed in range(trials):
        frames, first = synth.entering(
            probe, SIZE, face_height=900, empty=5, steps=4, visible=int(3 * FPS), seed=seed
        )
        gc.collect()
        results.append(trial(frames, first, make()))
    done = [r * 1000 for r in results if r is not None]
    return {
        "p50_ms": round(statistics.median(done), 1) if done else None,
        "runs_ms": [round(r, 1) for r in done],
        "undecided": len(results) - len(done),
    }


def run_bench(
    photos: Path = DEFAULT_PHOTOS, *, templates: int = 50_000, quick: bool = False
) -> dict[str, Any]:
    """Run everything and return the JSON-ready report."""
    started = time.monotonic()
    rss_start = rss_mb()
    index, sizes = build_index(photos, templates)
    rss_index = rss_mb()
    probe = read_image(photos / _PROBE)
    rows, _ = index.positive_rows()
    queries = np.stack([analyse_photo(probe).encoding] * 5 + list(rows[:: max(1, len(rows) // 10)]))
    report: dict[str, Any] = {
        "frame": f"{SIZE[0]}x{SIZE[1]}",
        **sizes,
        "matching": time_matching(index, queries),
        "memory": {
            "rss_mb_models_and_templates": round(rss_index, 1),
            "rss_mb_before_templates": round(rss_start, 1),
            "templates_mb": round(index.nbytes / 2**20, 1),
        },
    }
    fast = latency(gated(index), probe, 3 if quick else 7)
    slow = latency(naive(index), probe, 2 if quick else 3)
    ratio = (slow["p50_ms"] / fast["p50_ms"]) if fast["p50_ms"] and slow["p50_ms"] else None
    report["latency"] = {
        "gated": fast,
        "naive": slow,
        "ratio": round(ratio, 1) if ratio else None,
        "target": {"p50_ms": 200, "ratio": 3},
    }
    report["memory"]["rss_mb_end"] = round(rss_mb(), 1)
    report["seconds"] = round(time.monotonic() - started, 1)
    return report
