"""Counts for the rules: faces per door cycle (tailgating) and direction across a line."""

from __future__ import annotations

from dataclasses import dataclass, field

from drivers.face.types import Direction, FaceSighting


@dataclass(frozen=True, slots=True)
class CountingLine:
    """A line across the picture; crossing it in the `inward` sense means entering.

    Args:
        axis: ``"y"`` for a horizontal line at ``position × height`` (camera looking down a
            corridor), ``"x"`` for a vertical one at ``position × width``.
        position: 0…1 along the axis.
        inward: +1 if entering moves the centre towards larger coordinates, -1 otherwise.
        frame_size: (width, height) of the frames, to turn `position` into pixels.
    """

    axis: str = "y"
    position: float = 0.5
    inward: int = 1
    frame_size: tuple[int, int] = (1280, 720)

    def __post_init__(self) -> None:
        if self.axis not in {"x", "y"} or not 0 < self.position < 1 or self.inward not in {1, -1}:
            raise ValueError("axis must be x or y, position in (0, 1), inward +1 or -1")

    def crossing(self, centres: list[tuple[float, float]]) -> Direction | None:
        """The direction in which a track's centres crossed the line, if they did."""
        if len(centres) < 2:
            return None
        index = 0 if self.axis == "x" else 1
        line = self.position * self.frame_size[index]
        start, end = centres[0][index] - line, centres[-1][index] - line
        if start * end >= 0:  # both on the same side (or touching): no crossing
            return None
        return Direction.IN if (end - start) * self.inward > 0 else Direction.OUT


@dataclass(slots=True)
class DoorCycleCounter:
    """Distinct faces seen while the door was open (plus a lead-in), for tailgating rules.

    Args:
        lead_s: faces seen this long before the door opened belong to the cycle (people queue).
    """

    lead_s: float = 2.0
    _recent: dict[int, float] = field(default_factory=dict)
    _open_at: float | None = None
    _tracks: set[int] = field(default_factory=set)

    def sighting(self, s: FaceSighting) -> None:
        """Record a sighting (any event)."""
        self._recent[s.track_id] = s.frame_monotonic
        if self._open_at is not None:
            self._tracks.add(s.track_id)

    def door_opened(self, t: float) -> None:
        """The door opened at monotonic `t`: start a cycle with the tracks seen just before."""
        self._open_at = t
        self._tracks = {tid for tid, seen in self._recent.items() if seen >= t - self.lead_s}
        self._recent = {tid: s for tid, s in self._recent.items() if s >= t - self.lead_s}

    def door_closed(self) -> int:
        """End the cycle; return how many distinct faces it had."""
        count = len(self._tracks)
        self._open_at, self._tracks = None, set()
        return count
