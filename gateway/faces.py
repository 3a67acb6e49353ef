"""Face enrolment from photos and the face side of the store, for the CLI, portal and daemon.

Photos are read, their single face encoded, and only the 128-d template is stored: the image
itself is never written anywhere or logged.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from drivers.face.analysis import analyse_photo, read_image
from drivers.face.errors import PhotoRejected, RejectReason
from drivers.face.matching import DEFAULT_THRESHOLD, TemplateIndex
from drivers.face.strangers import StrangerCluster, StrangerClusters
from gateway.i18n_face import tf
from sync import faces as face_db
from sync.errors import NotFound
from sync.store import Store

PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})


@dataclass(frozen=True, slots=True)
class EnrolResult:
    """What happened to one photo.

    Attributes:
        path: the photo.
        occupant_id: whom it was for.
        template_id: the stored template's row id, None when refused.
        reason: why it was refused (None when enrolled).
        quality: the face's quality score (0 when refused).
        message: a sentence for the user, in the current language, naming the file.
    """

    path: Path
    occupant_id: str
    template_id: int | None
    reason: str | None
    quality: float
    message: str

    @property
    def ok(self) -> bool:
        """Whether a template was stored."""
        return self.template_id is not None


Progress = Callable[[int, int, EnrolResult], None]  # (done, total, last result)


def enrol_one(store: Store, occupant_id: str, path: Path) -> EnrolResult:
    """Encode one photo and store it as a template of `occupant_id`; never raises for bad photos.

    Raises:
        NotFound: no such occupant.
    """
    store.get_occupant(occupant_id)
    try:
        face = analyse_photo(read_image(path))
    except PhotoRejected as err:
        message = tf(f"face.reject.{err.reason.value}", file=path.name, detail=err.detail)
        return EnrolResult(path, occupant_id, None, err.reason.value, 0.0, message)
    template_id = face_db.add_template(
        store.db, occupant_id, face.encoding, f"photo:{path.name}", face.quality.score
    )
    message = tf(
        "face.enrolled", file=path.name, occupant=occupant_id, quality=f"{face.quality.score:.2f}"
    )
    return EnrolResult(path, occupant_id, template_id, None, face.quality.score, message)


def enrol_photos(
    store: Store, occupant_id: str, paths: Sequence[Path], progress: Progress | None = None
) -> list[EnrolResult]:
    """Enrol several photos of one occupant, reporting progress after each."""
    return enrol_pairs(store, [(occupant_id, Path(p)) for p in paths], progress)


def enrol_pairs(
    store: Store, pairs: Sequence[tuple[str, Path]], progress: Progress | None = None
) -> list[EnrolResult]:
    """Enrol (occupant id, photo) pairs; unknown occupants are refused per photo."""
    results: list[EnrolResult] = []
    for done, (occupant_id, path) in enumerate(pairs, start=1):
        try:
            result = enrol_one(store, occupant_id, path)
        except NotFound:
            message = tf("face.reject.unknown_occupant", file=path.name, detail=occupant_id)
            result = EnrolResult(path, occupant_id, None, "unknown_occupant", 0.0, message)
        results.append(result)
        if progress is not None:
            progress(done, len(pairs), result)
    return results


def enrol_bulk(store: Store, source: Path, progress: Progress | None = None) -> list[EnrolResult]:
    """Enrol from a folder (``<id>/*.jpg`` or ``<id>_*.jpg``) or a CSV file (``occupant_id,path``).

    Raises:
        ValueError: a malformed CSV (naming the line).
    """
    if source.is_dir():
        known = {o.id for o in store.list_occupants()}
        pairs = collect_folder(source, known)
    else:
        pairs = parse_csv(source.read_text("utf-8-sig"), base=source.parent)
    return enrol_pairs(store, pairs, progress)


def collect_folder(root: Path, known: Iterable[str] = ()) -> list[tuple[str, Path]]:
    """(occupant id, photo) pairs from ``root/<id>/*.jpg`` and ``root/<id>_anything.jpg``.

    For flat files the longest known occupant id followed by ``_`` wins (ids may contain
    ``_``); without a match the text before the first ``_`` is taken.
    """
    ids = sorted(known, key=len, reverse=True)
    pairs: list[tuple[str, Path]] = []
    for entry in sorted(root.iterdir()):
        if entry.is_dir():
            pairs += [(entry.name, p) for p in sorted(entry.iterdir()) if _is_photo(p)]
        elif _is_photo(entry) and "_" in entry.stem:
            owner = next((i for i in ids if entry.stem.startswith(i + "_")), None)
            pairs.append((owner or entry.stem.split("_", 1)[0], entry))
    return pairs


def _is_photo(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in PHOTO_SUFFIXES


def parse_csv(text: str, *, base: Path) -> list[tuple[str, Path]]:
    """Parse ``occupant_id,path`` rows (optional header, ``#`` comments, blank lines).

    Relative paths are taken from `base` (the CSV's folder).

    Raises:
        ValueError: a row without exactly two non-empty fields, naming its line.
    """
    pairs: list[tuple[str, Path]] = []
    reader = csv.reader(io.StringIO(text))
    for row in reader:
        line = reader.line_num
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if len(cells) != 2 or not all(cells):
            raise ValueError(tf("face.bad_csv", line=line, problem="expected occupant_id,path"))
        if line == 1 and [c.lower() for c in cells] == ["occupant_id", "path"]:
            continue
        path = Path(cells[1])
        pairs.append((cells[0], path if path.is_absolute() else base / path))
    return pairs


def mark_wrong_photo(store: Store, occupant_id: str, path: Path) -> int:
    """Record that the face in `path` is NOT `occupant_id`: a negative template of theirs.

    From then on any face within the match threshold of this one is refused as that occupant
    (`TemplateIndex` vetoes them), so a look-alike stops opening their doors. Only the 128-d
    encoding is stored; the photo is neither copied nor logged.

    Returns:
        The negative template's row id.

    Raises:
        NotFound: no such occupant.
        PhotoRejected: the photo has no single usable face.
    """
    store.get_occupant(occupant_id)  # before the ≈ 0.3 s of encoding
    face = analyse_photo(read_image(path))
    return face_db.mark_wrong(store.db, occupant_id, face.encoding)


def load_index(store: Store, threshold: float = DEFAULT_THRESHOLD) -> TemplateIndex:
    """Every stored template as a `TemplateIndex` (what the face service is given)."""
    matrix, ids, negative = face_db.load_templates(store.db)
    return TemplateIndex(matrix, ids, negative, threshold=threshold)


def reject_message(path: Path, err: PhotoRejected) -> str:
    """The user message for a refused photo."""
    return tf(f"face.reject.{err.reason.value}", file=path.name, detail=err.detail)


def load_strangers(store: Store, join_distance: float = 0.45) -> StrangerClusters:
    """The stranger clusters from the database, ready for online assignment."""
    clusters = [
        StrangerCluster(
            c.id, c.centroid, c.samples, c.first_seen, c.last_seen, c.days_seen, dirty=False
        )
        for c in face_db.load_clusters(store.db)
    ]
    return StrangerClusters(clusters, join_distance=join_distance)


def save_strangers(store: Store, clusters: StrangerClusters) -> int:
    """Write the clusters that changed; return how many were written."""
    written = 0
    for c in clusters.clusters:
        if c.dirty:
            stored = face_db.StoredCluster(
                c.id, c.centroid, c.samples, c.first_seen, c.last_seen, set(c.days_seen)
            )
            c.id = face_db.save_cluster(store.db, stored)
            c.dirty, written = False, written + 1
    return written


__all__ = [
    "EnrolResult",
    "Progress",
    "RejectReason",
    "collect_folder",
    "enrol_bulk",
    "enrol_one",
    "enrol_pairs",
    "enrol_photos",
    "load_index",
    "load_strangers",
    "mark_wrong_photo",
    "parse_csv",
    "reject_message",
    "save_strangers",
]
