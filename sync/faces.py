"""Face templates and stranger clusters in the gateway database.

Templates are 128 float32 values stored as raw bytes (512 bytes a row); they never leave the
gateway (no MQTT topic carries them). Wrong matches become *negative* templates of the occupant
they were wrongly matched to, so that face never matches that occupant again.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import numpy as np
import numpy.typing as npt
from sqlite_utils import Database

from sync.errors import NotFound, StoreError, ValidationError

DIM = 128


def _blob(encoding: npt.ArrayLike) -> bytes:
    vector = np.asarray(encoding, dtype=np.float32).reshape(-1)
    if vector.shape != (DIM,) or not np.isfinite(vector).all():
        raise ValidationError(f"a face encoding has {DIM} finite values, got shape {vector.shape}")
    return vector.tobytes()


def _vector(blob: bytes) -> npt.NDArray[np.float32]:
    if len(blob) != DIM * 4:
        raise StoreError(f"corrupt face encoding: {len(blob)} bytes instead of {DIM * 4}")
    return np.frombuffer(blob, dtype=np.float32).copy()


def _pk(value: object) -> int:
    if not isinstance(value, int):
        raise StoreError(f"unexpected primary key {value!r}")
    return value


def _iso(moment: datetime) -> str:
    # Stored in UTC so that text comparison in SQL (purge) is time order.
    if moment.tzinfo is None:
        raise ValidationError("stranger times must be timezone-aware")
    return moment.astimezone(UTC).isoformat()


def _now() -> str:
    return datetime.now(UTC).isoformat()


def add_template(  # noqa: PLR0917 - the signature the gateway and CLI were promised
    db: Database,
    occupant_id: str,
    encoding: npt.ArrayLike,
    source: str,
    quality: float,
    negative: bool = False,
) -> int:
    """Store one template (or negative template) of an occupant; return its row id.

    Raises:
        NotFound: no such occupant.
        ValidationError: not a 128-d finite encoding.
    """
    if not db.table("occupants").count_where("id = ?", [occupant_id]):
        raise NotFound(f"no occupant {occupant_id!r}")
    row = {
        "occupant_id": occupant_id,
        "encoding": _blob(encoding),
        "source": source,
        "quality": float(quality),
        "negative": int(negative),
        "created": _now(),
    }
    try:
        with db.atomic():
            return _pk(db.table("face_templates").insert(row).last_pk)
    except sqlite3.Error as err:
        raise StoreError(f"cannot store face template: {err}") from err


def load_templates(db: Database) -> tuple[npt.NDArray[np.float32], list[str], list[bool]]:
    """Every template as (N×128 float32 matrix, occupant id per row, negative flag per row).

    Templates of moved-out occupants are deleted by the store; suspended or pending occupants
    keep theirs (the access rules decide what a match of theirs means).
    """
    rows = db.execute(
        "SELECT occupant_id, encoding, negative FROM face_templates ORDER BY id"
    ).fetchall()
    matrix = np.empty((len(rows), DIM), dtype=np.float32)
    for i, (_, blob, _) in enumerate(rows):
        matrix[i] = _vector(blob)
    return matrix, [r[0] for r in rows], [bool(r[2]) for r in rows]


def templates_version(db: Database) -> tuple[int, int]:
    """(row count, highest row id) of the templates: changes with every insert and delete.

    Cheap enough to poll (an index lookup), so a running camera reloads its templates after an
    enrolment, a wrong-match mark or a move-out made by another process (the CLI, the portal).
    """
    row = db.execute("SELECT count(*), coalesce(max(id), 0) FROM face_templates").fetchone()
    return int(row[0]), int(row[1])


def mark_wrong(db: Database, occupant_id: str, encoding: npt.ArrayLike) -> int:
    """Record that `encoding` is NOT `occupant_id` (a wrong match): a negative template."""
    return add_template(db, occupant_id, encoding, "wrong-match", 0.0, negative=True)


def template_count(db: Database, occupant_id: str) -> int:
    """How many positive templates an occupant has."""
    return int(
        db.table("face_templates").count_where("occupant_id = ? AND negative = 0", [occupant_id])
    )


@dataclass(slots=True)
class StoredCluster:
    """A stranger cluster as stored (mirrors `drivers.face.strangers.StrangerCluster`)."""

    id: int | None
    centroid: npt.NDArray[np.float32]
    samples: int
    first_seen: datetime
    last_seen: datetime
    days_seen: set[date] = field(default_factory=set)


def load_clusters(db: Database) -> list[StoredCluster]:
    """Every stranger cluster, oldest first."""
    rows = db.execute(
        "SELECT id, centroid, samples, first_seen, last_seen, days_seen FROM strangers ORDER BY id"
    ).fetchall()
    return [
        StoredCluster(
            int(r[0]),
            _vector(r[1]),
            int(r[2]),
            datetime.fromisoformat(r[3]),
            datetime.fromisoformat(r[4]),
            {date.fromisoformat(d) for d in json.loads(r[5])},
        )
        for r in rows
    ]


def save_cluster(db: Database, cluster: StoredCluster) -> int:
    """Insert or update one cluster; return its id (also set on `cluster`)."""
    row = {
        "centroid": _blob(cluster.centroid),
        "samples": cluster.samples,
        "first_seen": _iso(cluster.first_seen),
        "last_seen": _iso(cluster.last_seen),
        "days_seen": json.dumps(sorted(d.isoformat() for d in cluster.days_seen)),
    }
    with db.atomic():
        if cluster.id is None:
            cluster.id = _pk(db.table("strangers").insert(row).last_pk)
        else:
            db.table("strangers").upsert({"id": cluster.id, **row}, pk="id")
    return cluster.id


def purge_clusters(db: Database, older_than: datetime) -> int:
    """Delete clusters last seen before `older_than` (the retention limit); return how many."""
    with db.atomic():
        cursor = db.execute("DELETE FROM strangers WHERE last_seen < ?", [_iso(older_than)])
    return int(cursor.rowcount)
