"""The face engine in its own process, fed by its own camera thread.

dlib holds the GIL for a whole encoding (≈ 100 ms measured): run in a thread of the gateway it
would stall card decisions. So the child process owns the camera (`FrameGrabber`) and the
engine; only small `FaceSighting` records (and camera health) come back over a pipe, read by a
thread that hands them to the event loop. A card decision never waits for a frame.

Usage from the gateway::

    async with FaceService(source, templates=(matrix, ids, negative)) as faces:
        async for sighting in faces.sightings():
            ...
        faces.health()                       # CameraHealth, for camera_offline
        await faces.set_templates(matrix, ids, negative)   # after enrolment / mark_wrong
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing as mp
import sys
import threading
import time
import types
from collections.abc import AsyncIterator, Iterator, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from drivers.camera import CameraHealth, FrameGrabber
from drivers.face.engine import EngineConfig, FaceEngine
from drivers.face.errors import FaceError
from drivers.face.matching import TemplateIndex
from drivers.face.types import FaceSighting

logger = logging.getLogger(__name__)

Templates = tuple[npt.NDArray[np.float32], Sequence[str], Sequence[bool]]
_HEALTH_EVERY_S = 1.0


def _index(templates: Templates | None, threshold: float) -> TemplateIndex | None:
    if templates is None:
        return None
    matrix, ids, negative = templates
    return TemplateIndex(matrix, ids, negative, threshold=threshold)


def _child(conn: Connection, source: str, grabber_opts: dict[str, Any],
           config: EngineConfig) -> None:
    """Entry point of the vision process.

    The templates arrive as the first message rather than as an argument: the `Process` object
    keeps its arguments for the life of the process, which would hold a second copy of every
    template (25 MB at 50,000) beside the index built from them.
    """
    engine = FaceEngine(config, None)
    try:
        kind, payload = conn.recv()  # blocking: no frame may be judged without the templates
    except EOFError:
        return
    if kind == "stop":
        return
    engine.set_index(_index(payload, config.threshold))
    del payload
    options = dict(grabber_opts)
    offline_after = float(options.pop("offline_after"))
    grabber = FrameGrabber(source, **options)
    grabber.start()
    seq, next_health = 0, 0.0
    try:
        while not _commands(conn, engine):
            frame = grabber.wait_newer(seq, 0.2)
            if frame is not None:
                seq = frame.seq
                for sighting in engine.process(frame.image, frame.monotonic):
                    conn.send(("sighting", sighting))
            if time.monotonic() >= next_health:
                conn.send(("health", grabber.health(offline_after)))
                next_health = time.monotonic() + _HEALTH_EVERY_S
    except (EOFError, BrokenPipeError):
        pass  # the gateway went away: just stop
    finally:
        grabber.stop()


_start_lock = threading.Lock()


@contextlib.contextmanager
def _bare_main() -> Iterator[None]:
    """Start a spawned child without re-running the parent's ``__main__`` in it.

    "spawn" re-imports the parent's main script in the child so that functions defined there
    can be unpickled. For the ``doorgate`` console script that means importing `gateway.cli`
    and everything it pulls in (typer, rich, MQTT, the station): ≈ 35 MB of the vision process,
    measured, for nothing: its entry point lives in this module. A placeholder main module
    without a file or spec is skipped by `multiprocessing.spawn.get_preparation_data`.
    """
    with _start_lock:
        real = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            sys.modules["__main__"] = real


def _commands(conn: Connection, engine: FaceEngine) -> bool:
    """Apply pending commands; True when asked to stop."""
    while conn.poll():
        kind, payload = conn.recv()
        if kind == "stop":
            return True
        if kind == "templates":
            engine.set_index(_index(payload, engine.config.threshold))
    return False


class FaceService:
    """Camera + face engine in a child process, as an ``async with`` object.

    Reusable, not reentrant.

    Args:
        source: camera source (see `drivers.camera.parse_source`).
        templates: ``(matrix N×128 float32, occupant ids, negative flags)`` or None.
        config: engine tuning.
        name: camera name in health reports.
        offline_after: seconds without frames before health says offline.
        fps / loop: file-source pacing and looping (demo, tests).
        start_timeout: seconds to wait for the process to report in (model loading).
    """

    def __init__(
        self,
        source: str | int | Path,
        *,
        templates: Templates | None = None,
        config: EngineConfig | None = None,
        name: str = "door",
        offline_after: float = 30.0,
        fps: float | None = None,
        loop: bool = False,
        start_timeout: float = 30.0,
    ) -> None:
        self.source, self.templates = str(source), templates
        self.config = config or EngineConfig()
        self.name, self.offline_after, self.start_timeout = name, offline_after, start_timeout
        self._grabber_opts: dict[str, Any] = {"name": name, "fps": fps, "loop": loop}
        self._proc: Any = None
        self._conn: Connection | None = None
        self._queue: asyncio.Queue[FaceSighting | None] | None = None
        self._health = CameraHealth(name, False, time.monotonic(), False, 0)
        self._reader: threading.Thread | None = None

    async def __aenter__(self) -> Self:
        if self._proc is not None:
            raise FaceError("face service already running")
        # spawn, not fork: the parent has threads (asyncio executors) that fork would copy badly.
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=_child, name=f"face-{self.name}", daemon=True,
            args=(child, self.source, {**self._grabber_opts, "offline_after": self.offline_after},
                  self.config),
        )
        # Started on the loop thread on purpose: the arguments are small now (the templates go
        # through the pipe below), and no other code of ours runs while __main__ is swapped.
        with _bare_main():
            proc.start()
        child.close()
        # Up to 25 MB for 50,000 templates: the pipe blocks until the child reads it.
        await asyncio.to_thread(parent.send, ("templates", self.templates))
        self._proc, self._conn, self._queue = proc, parent, asyncio.Queue()
        loop = asyncio.get_running_loop()
        self._reader = threading.Thread(
            target=self._pump, args=(parent, loop, self._queue), daemon=True, name="face-pipe"
        )
        self._reader.start()
        return self

    def _pump(self, conn: Connection, loop: asyncio.AbstractEventLoop,
              queue: asyncio.Queue[FaceSighting | None]) -> None:
        try:
            while True:
                kind, payload = conn.recv()
                if kind == "health":
                    self._health = payload
                else:
                    loop.call_soon_threadsafe(queue.put_nowait, payload)
        except (EOFError, OSError):
            with contextlib.suppress(RuntimeError):  # loop already closed at shutdown
                loop.call_soon_threadsafe(queue.put_nowait, None)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        proc, conn, reader = self._proc, self._conn, self._reader
        self._proc = self._conn = self._queue = self._reader = None
        if proc is None or conn is None:
            return
        with contextlib.suppress(OSError):
            conn.send(("stop", None))
        await asyncio.to_thread(proc.join, 5.0)
        if proc.is_alive():
            logger.warning("face process did not stop; terminating it")
            proc.terminate()
            await asyncio.to_thread(proc.join, 2.0)
        conn.close()
        if reader is not None:
            await asyncio.to_thread(reader.join, 2.0)

    @property
    def pid(self) -> int | None:
        """The vision process's id while it runs (for memory measurements)."""
        return None if self._proc is None else int(self._proc.pid)

    def health(self) -> CameraHealth:
        """The camera health last reported by the vision process (offline if it died)."""
        if self._proc is not None and not self._proc.is_alive():
            h = self._health
            return CameraHealth(h.name, False, h.since, True, h.frames, h.ended,
                                "face process exited")
        return self._health

    async def set_templates(self, matrix: npt.NDArray[np.float32], occupant_ids: Sequence[str],
                            negative: Sequence[bool]) -> None:
        """Replace the templates in the running engine (they stay on this machine)."""
        self.templates = (matrix, list(occupant_ids), list(negative))
        if self._conn is not None:
            await asyncio.to_thread(self._conn.send, ("templates", self.templates))

    async def sightings(self) -> AsyncIterator[FaceSighting]:
        """Yield sightings until the vision process ends."""
        if self._queue is None:
            raise FaceError("face service is not running (use `async with`)")
        queue = self._queue
        while (item := await queue.get()) is not None:
            yield item
