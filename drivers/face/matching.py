"""1:N matching of one encoding against every template as one float32 matrix product.

Distances use ``|a-b|² = |a|² + |b|² - 2a·b`` with the template norms precomputed, so a query is
one matrix-vector product (BLAS-free numpy still vectorises it) instead of N row subtractions.
Several templates per occupant are fine; an occupant's *negative* templates (encodings marked
"this is not them" after a wrong match) veto that occupant for any query closer to one of them
than the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from drivers.face.types import Encoding

# Chosen on the fixtures (README): same person 0.05-0.42, different persons 0.76-0.86.
# 0.5 sits above every same-person pair with margin and far below any different pair; dlib's
# LFW-tuned 0.6 is looser than a door for 50,000 people should be.
DEFAULT_THRESHOLD = 0.5
_TOP_K = 32


@dataclass(frozen=True, slots=True)
class Match:
    """The result of one 1:N query.

    Attributes:
        occupant_id: best occupant within the threshold, else None.
        distance: distance to the best occupant's nearest template (inf with no templates).
        runner_up: distance to the second-best occupant (inf if none), to judge doubt.
        vetoed: occupants skipped because a negative template of theirs matched.
    """

    occupant_id: str | None
    distance: float
    runner_up: float
    vetoed: tuple[str, ...] = ()


class TemplateIndex:
    """All enrolled templates, ready for 1:N queries.

    Args:
        matrix: N×128 encodings (converted to float32, C-contiguous).
        occupant_ids: the occupant of each row.
        negative: per row, whether it is a negative template.
        threshold: maximum distance for a match.
    """

    def __init__(
        self,
        matrix: npt.ArrayLike,
        occupant_ids: Sequence[str],
        negative: Sequence[bool] | npt.NDArray[np.bool_],
        *,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        m = np.ascontiguousarray(np.asarray(matrix, dtype=np.float32).reshape(-1, 128))
        neg = np.asarray(negative, dtype=bool).reshape(-1)
        if not len(m) == len(occupant_ids) == len(neg):
            raise ValueError("matrix, occupant_ids and negative must have the same length")
        self.threshold = threshold
        self.names, codes = np.unique(np.asarray(occupant_ids, dtype=object), return_inverse=True)
        codes = codes.astype(np.int32)
        self._pos, self._pos_codes = m[~neg], codes[~neg]
        self._pos_norm2 = np.einsum("ij,ij->i", self._pos, self._pos)
        self._neg, self._neg_codes = m[neg], codes[neg]

    def __len__(self) -> int:
        return int(len(self._pos) + len(self._neg))

    @property
    def nbytes(self) -> int:
        """Memory held by the template arrays."""
        return int(self._pos.nbytes + self._neg.nbytes + self._pos_norm2.nbytes)

    def positive_rows(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.object_]]:
        """The positive templates and the occupant of each row (for comparisons and tests)."""
        return self._pos, self.names[self._pos_codes]

    def distances(self, query: Encoding) -> npt.NDArray[np.float32]:
        """Distance from `query` to every positive template (one matrix-vector product)."""
        q = np.asarray(query, dtype=np.float32)
        d2 = self._pos_norm2 + np.float32(q @ q) - 2 * (self._pos @ q)
        out: npt.NDArray[np.float32] = np.sqrt(np.maximum(d2, 0, out=d2), out=d2)
        return out

    def match(self, query: Encoding) -> Match:
        """The best non-vetoed occupant for `query`."""
        return self._select(query, self.distances(query))

    def match_naive(self, query: Encoding) -> Match:
        """The same answer the way face_recognition.face_distance does it (per-row differences).

        Kept for the benchmark's comparison only.
        """
        diff = self._pos.astype(np.float64) - np.asarray(query, dtype=np.float64)
        return self._select(query, np.linalg.norm(diff, axis=1).astype(np.float32))

    def _select(self, query: Encoding, dist: npt.NDArray[np.float32]) -> Match:
        if not len(dist):
            return Match(None, float("inf"), float("inf"))
        k = min(_TOP_K, len(dist))
        order = np.argpartition(dist, k - 1)[:k]
        best = self._pick(query, dist, order[np.argsort(dist[order])])
        if best is None:  # every nearby occupant vetoed: look at all rows (rare)
            best = self._pick(query, dist, np.argsort(dist))
        found, vetoed = best or ([], ())
        first = found[0] if found else (-1, float("inf"))
        second = found[1][1] if len(found) > 1 else float("inf")
        occupant = str(self.names[first[0]]) if first[1] <= self.threshold else None
        return Match(occupant, first[1], second, vetoed)

    def _pick(
        self, query: Encoding, dist: npt.NDArray[np.float32], rows: npt.NDArray[np.intp]
    ) -> tuple[list[tuple[int, float]], tuple[str, ...]] | None:
        found: list[tuple[int, float]] = []
        vetoed: list[str] = []
        seen: set[int] = set()
        for row in rows:
            code = int(self._pos_codes[row])
            if code in seen:
                continue
            seen.add(code)
            if self._vetoed(code, query):
                vetoed.append(str(self.names[code]))
                continue
            found.append((code, float(dist[row])))
            if len(found) == 2:
                break
        if not found and len(rows) < len(dist):
            return None
        return found, tuple(vetoed)

    def _vetoed(self, code: int, query: Encoding) -> bool:
        rows = self._neg[self._neg_codes == code]
        if not len(rows):
            return False
        d = np.linalg.norm(rows - np.asarray(query, dtype=np.float32), axis=1)
        return bool(d.min() <= self.threshold)
