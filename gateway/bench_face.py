"""`doorgate bench face`: decision latency, 1:N matching time and memory, as JSON.

Latency is "face first fully visible → decision" at 720p. Frames are generated on a virtual
camera clock (frame i exists from t0 + i/fps): whenever a pipeline is ready it takes the newest
frame, as the camera thread would give it, so a pipeline busy with an earlier frame pays for it.
The scene: an empty hallway, a person sliding in with the face cut by the frame edge (motion,
no full face), then the whole face. The naive pipeline is plain face_recognition on every
frame (``face_locations`` at full size with its default upsample of 1, ``face_encodings``,
``face_distance``), measured in the same run against the same templates.

Also measured: sustained frames per second with a face in view (every frame processed, so a
camera at that rate never builds a backlog), one 1:N query at 10k / 50k / 200k templates (matrix
product vs per-row differences), and resident memory of this process and, separately, of a real
vision process (`FaceService`, the process that runs on the Pi) holding the 50,000 templates.
No image or template leaves memory except the temporary bench video, deleted at the end.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import tempfile
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
from drivers.face.service import FaceService

DEFAULT_PHOTOS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "faces"
SIZE = (1280, 720)
FPS = 25.0
MATCH_SIZES = (10_000, 50_000, 200_000)
_ENROLLED = {"A": ("obama2.jpg", "obama3.jpg"), "B": ("biden.jpg", "biden2.jpg")}
_PROBE = "obama.jpg"


def rss_mb(pid: int | str = "self", field: str = "VmRSS") -> float:
    """Resident memory (or its peak, ``VmHWM``) of a process in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _pct(values: list[float], q: float) -> float:
    """The q-quantile (0…1) by linear interpolation; the median for a single value."""
    return float(np.quantile(np.asarray(values, dtype=np.float64), q))


def synthetic_templates(
    real: npt.NDArray[np.float32], n: int, rng: np.random.Generator
) -> npt.NDArray[np.float32]:
    """`n` made-up people around the real encodings, ~0.85 away from each (like strangers)."""
    # float32 throughout: at 200,000 rows a float64 temporary alone would be 200 MB.
    out = rng.standard_normal((n, real.shape[1]), dtype=np.float32)
    out *= np.float32(0.075)
    out += real[rng.integers(0, len(real), n)]
    return out


def real_encodings(photos: Path) -> tuple[npt.NDArray[np.float32], list[str]]:
    """The enrolled people's real encodings (A and B, two photos each)."""
    rows, ids = [], []
    for occupant, names in _ENROLLED.items():
        for name in names:
            rows.append(analyse_photo(read_image(photos / name)).encoding)
            ids.append(occupant)
    return np.stack(rows), ids


def build_templates(
    real: npt.NDArray[np.float32], real_ids: list[str], n: int, seed: int = 0
) -> tuple[npt.NDArray[np.float32], list[str]]:
    """Real templates plus synthetic ones up to `n` rows, two per made-up occupant."""
    extra = max(0, n - len(real))
    matrix = np.concatenate([real, synthetic_templates(real, extra, np.random.default_rng(seed))])
    return matrix, real_ids + [f"s{i // 2:06d}" for i in range(extra)]


def build_index(photos: Path, n: int, seed: int = 0) -> tuple[TemplateIndex, dict[str, Any]]:
    """Real templates of A and B plus synthetic ones up to `n` rows."""
    matrix, ids = build_templates(*real_encodings(photos), n, seed)
    index = TemplateIndex(matrix, ids, np.zeros(len(matrix), bool))
    return index, {"templates": len(matrix), "occupants": len(index.names)}


def time_matching(index: TemplateIndex, queries: npt.NDArray[np.float32]) -> dict[str, float]:
    """One 1:N query, matrix form vs per-row differences: p50 and p95 (ms)."""

    def times(fn: Callable[[npt.NDArray[np.float32]], object]) -> list[float]:
        out = []
        for q in queries:
            t = time.perf_counter()
            fn(q)
            out.append((time.perf_counter() - t) * 1000)
        return out

    matrix, naive_ = times(index.match), times(index.match_naive)
    return {
        "matrix_ms_p50": round(_pct(matrix, 0.5), 3),
        "matrix_ms_p95": round(_pct(matrix, 0.95), 3),
        "naive_ms_p50": round(_pct(naive_, 0.5), 3),
        "naive_ms_p95": round(_pct(naive_, 0.95), 3),
        "ratio_p50": round(_pct(naive_, 0.5) / _pct(matrix, 0.5), 1),
    }


def matching_sizes(
    real: npt.NDArray[np.float32], real_ids: list[str], probe: npt.NDArray[np.float32],
    sizes: tuple[int, ...] = MATCH_SIZES,
) -> dict[str, dict[str, float]]:
    """`time_matching` at each index size (the index is dropped before the next is built)."""
    out = {}
    for n in sizes:
        matrix, ids = build_templates(real, real_ids, n, seed=n)
        index = TemplateIndex(matrix, ids, np.zeros(len(matrix), bool))
        del matrix, ids
        rows, _ = index.positive_rows()
        queries = np.stack([probe] * 5 + list(rows[:: max(1, len(rows) // 15)][:15]))
        out[str(n)] = time_matching(index, queries)
        del index, rows
        gc.collect()
    return out


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
        "p95_ms": round(_pct(done, 0.95), 1) if done else None,
        "runs_ms": [round(r, 1) for r in done],
        "undecided": len(results) - len(done),
    }


def throughput(decide: Decide, frames: list[Image]) -> dict[str, float]:
    """Frames per second when every frame is processed back to back (a face in view)."""
    times = []
    for frame in frames:
        t = time.perf_counter()
        decide(frame, time.monotonic())
        times.append((time.perf_counter() - t) * 1000)
    steady = times[1:] or times  # the first frame carries the one encoding of the track
    return {
        "fps": round(1000 * len(times) / sum(times), 1),
        "frame_ms_p50": round(_pct(steady, 0.5), 1),
        "frame_ms_p95": round(_pct(steady, 0.95), 1),
        "frames": len(times),
    }


def in_view_frames(probe: Image, n: int) -> list[Image]:
    """`n` 720p frames of the probe face standing in view, slightly moving (no re-detection)."""
    scene = synth.background(SIZE, 3)
    return [
        synth.place(scene, probe, (SIZE[0] / 2 + 3 * (i % 4), SIZE[1] / 2), 900) for i in range(n)
    ]


def vision_process_memory(
    matrix: npt.NDArray[np.float32], ids: list[str], probe: Image, seconds: float = 6.0
) -> dict[str, Any]:
    """Steady-state RSS of a real `FaceService` process holding these templates.

    It watches a looping door video for `seconds` (models loaded, frames decoded, a face
    tracked and encoded) before its /proc status is read.
    """
    with tempfile.TemporaryDirectory(prefix="doorgate-bench-") as tmp:
        frames, _ = synth.entering(probe, SIZE, face_height=900, empty=5, steps=4, visible=40)
        video = synth.write_video(Path(tmp) / "door.avi", frames, FPS)
        del frames

        async def watch() -> dict[str, Any]:
            negative = [False] * len(ids)
            async with FaceService(video, templates=(matrix, ids, negative), fps=FPS,
                                   loop=True) as service:
                sightings = 0

                async def count() -> None:
                    nonlocal sightings
                    async for _ in service.sightings():
                        sightings += 1

                task = asyncio.create_task(count())
                await asyncio.sleep(seconds)
                pid = service.pid
                rss = rss_mb(pid or 0)
                hwm = rss_mb(pid or 0, "VmHWM")
                task.cancel()
            return {
                "rss_mb": round(rss, 1),
                "peak_mb": round(hwm, 1),
                "templates": len(ids),
                "sightings": sightings,
            }

        return asyncio.run(watch())


def run_bench(
    photos: Path = DEFAULT_PHOTOS, *, templates: int = 50_000, quick: bool = False
) -> dict[str, Any]:
    """Run everything and return the JSON-ready report."""
    started = time.monotonic()
    rss_start = rss_mb()
    real, real_ids = real_encodings(photos)
    matrix, ids = build_templates(real, real_ids, templates)
    index = TemplateIndex(matrix, ids, np.zeros(len(matrix), bool))
    sizes = {"templates": len(matrix), "occupants": len(index.names)}
    rss_index = rss_mb()
    probe = read_image(photos / _PROBE)
    probe_encoding = analyse_photo(probe).encoding
    vision = vision_process_memory(matrix, ids, probe, 4.0 if quick else 6.0)
    del matrix, ids
    report: dict[str, Any] = {"frame": f"{SIZE[0]}x{SIZE[1]}", **sizes}

    fast = latency(gated(index), probe, 5 if quick else 20)
    in_view = in_view_frames(probe, 10 if quick else 40)
    gated_fps = throughput(gated(index)(), in_view)
    slow = latency(naive(index), probe, 2 if quick else 5)
    naive_fps = throughput(naive(index)(), in_view[:5])
    del in_view
    ratio = (slow["p50_ms"] / fast["p50_ms"]) if fast["p50_ms"] and slow["p50_ms"] else None
    report["latency"] = {
        "gated": fast,
        "naive": slow,
        "ratio_p50": round(ratio, 1) if ratio else None,
        "target": {"p50_ms": 200, "ratio": 3},
    }
    report["throughput"] = {
        "gated": gated_fps,
        "naive": naive_fps,
        "ratio": round(gated_fps["fps"] / naive_fps["fps"], 1),
        "target_fps": 10,
    }
    rss_bench = rss_mb()
    sizes_ = (10_000, 50_000) if quick else MATCH_SIZES
    report["matching"] = matching_sizes(real, real_ids, probe_encoding, sizes_)
    report["memory"] = {
        "target_mb": 250,
        "templates_mb": round(index.nbytes / 2**20, 1),
        "vision_process": vision,
        "bench_process": {
            "rss_mb_before_templates": round(rss_start, 1),
            "rss_mb_models_and_templates": round(rss_index, 1),
            # face_recognition loads its own copy of every dlib model at import (≈ 120 MB):
            # the naive comparison costs this, the vision process never imports it.
            "rss_mb_with_face_recognition": round(rss_bench, 1),
            "peak_mb": round(rss_mb(field="VmHWM"), 1),
        },
    }
    report["seconds"] = round(time.monotonic() - started, 1)
    return report
