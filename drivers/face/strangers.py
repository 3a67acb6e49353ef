"""Online clustering of unknown faces into anonymous strangers (no images, no names).

Each unknown encoding joins the nearest cluster within `join_distance` (its centroid becomes the
running mean) or starts a new one. A cluster remembers when it was first and last seen and on
which local days, so the gateway can raise ``stranger_recurring`` ("the same unknown face on 3
different days this week") and purge clusters after the retention period. Pure numpy; the
gateway persists clusters with `sync.faces`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np

from drivers.face.types import Encoding


@dataclass(slots=True)
class StrangerCluster:
    """One anonymous stranger.

    Attributes:
        id: database id once saved (None for a new cluster).
        centroid: mean encoding of its samples (float32).
        samples: how many encodings it absorbed.
        first_seen / last_seen: wall-clock times (timezone-aware).
        days_seen: the distinct local dates it was seen on.
    """

    id: int | None
    centroid: Encoding
    samples: int
    first_seen: datetime
    last_seen: datetime
    days_seen: set[date] = field(default_factory=set)
    dirty: bool = True


class StrangerClusters:
    """The set of clusters with online assignment.

    Args:
        join_distance: a face this close to a centroid is the same stranger (tighter than the
            match threshold: merging two strangers is worse than splitting one).
    """

    def __init__(self, clusters: list[StrangerCluster] | None = None, *,
                 join_distance: float = 0.45) -> None:
        self.join_distance = join_distance
        self.clusters: list[StrangerCluster] = list(clusters or [])

    def add(self, encoding: Encoding, now: datetime) -> StrangerCluster:
        """Assign one unknown face seen at `now`; return its (updated or new) cluster."""
        enc = np.asarray(encoding, dtype=np.float32)
        nearest = self.nearest(enc)
        if nearest is not None and nearest[1] <= self.join_distance:
            cluster = nearest[0]
            total = cluster.centroid * np.float32(cluster.samples) + enc
            cluster.centroid = (total / np.float32(cluster.samples + 1)).astype(np.float32)
            cluster.samples += 1
            cluster.last_seen = max(cluster.last_seen, now)
            cluster.first_seen = min(cluster.first_seen, now)
        else:
            cluster = StrangerCluster(None, enc.copy(), 1, now, now)
            self.clusters.append(cluster)
        cluster.days_seen.add(now.date())
        cluster.dirty = True
        return cluster

    def nearest(self, encoding: Encoding) -> tuple[StrangerCluster, float] | None:
        """The closest cluster and its distance, or None when there are none."""
        if not self.clusters:
            return None
        centroids = np.stack([c.centroid for c in self.clusters])
        d = np.linalg.norm(centroids - np.asarray(encoding, dtype=np.float32), axis=1)
        i = int(np.argmin(d))
        return self.clusters[i], float(d[i])

    def recurring(self, min_days: int, since: date | None = None) -> list[StrangerCluster]:
        """Clusters seen on at least `min_days` distinct days (counting from `since`)."""
        return [
            c for c in self.clusters
            if len({d for d in c.days_seen if since is None or d >= since}) >= min_days
        ]

    def purge(self, older_than: datetime) -> list[StrangerCluster]:
        """Drop (and return) clusters last seen before `older_than`."""
        old = [c for c in self.clusters if c.last_seen < older_than]
        self.clusters = [c for c in self.clusters if c.last_seen >= older_than]
        return old
