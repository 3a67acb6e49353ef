"""Face templates and stranger clusters on a real SQLite file."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from drivers.face.matching import TemplateIndex
from rules.model import Unit
from sync import faces
from sync.errors import NotFound, ValidationError
from sync.store import Store

SECRET = b"0123456789abcdef0123456789abcdef"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "g.db", SECRET)
    s.add_unit(Unit("A-101", "A", 1, "101", 2))
    s.add_occupant("A-101", "张三", "11010519491231002X", date(2025, 1, 1), None, occupant_id="o1")
    yield s
    s.close()


def test_templates_round_trip_as_float32_bytes(store: Store) -> None:
    enc = np.random.default_rng(0).normal(0, 0.1, 128).astype(np.float32)
    faces.add_template(store.db, "o1", enc, "photo:a.jpg", 0.9)
    faces.mark_wrong(store.db, "o1", enc + 1)
    matrix, ids, negative = faces.load_templates(store.db)
    assert matrix.dtype == np.float32 and matrix.shape == (2, 128)
    assert np.array_equal(matrix[0], enc)
    assert ids == ["o1", "o1"] and negative == [False, True]
    blob = store.db.execute("SELECT encoding FROM face_templates LIMIT 1").fetchone()[0]
    assert len(blob) == 512
    assert faces.template_count(store.db, "o1") == 1


def test_bad_encoding_and_unknown_occupant_are_refused(store: Store) -> None:
    with pytest.raises(ValidationError, match="128"):
        faces.add_template(store.db, "o1", np.zeros(64), "x", 1.0)
    with pytest.raises(ValidationError):
        faces.add_template(store.db, "o1", np.full(128, np.nan), "x", 1.0)
    with pytest.raises(NotFound):
        faces.add_template(store.db, "nobody", np.zeros(128), "x", 1.0)


def test_a_wrong_match_never_matches_that_occupant_again(store: Store) -> None:
    me = np.random.default_rng(1).normal(0, 0.1, 128).astype(np.float32)
    lookalike = me + 0.02
    faces.add_template(store.db, "o1", me, "photo", 0.9)
    assert TemplateIndex(*faces.load_templates(store.db)).match(lookalike).occupant_id == "o1"
    faces.mark_wrong(store.db, "o1", lookalike)
    after = TemplateIndex(*faces.load_templates(store.db)).match(lookalike + 0.001)
    assert after.occupant_id is None and after.vetoed == ("o1",)


def test_move_out_deletes_templates(store: Store) -> None:
    faces.add_template(store.db, "o1", np.zeros(128), "photo", 0.9)
    store.move_out("o1")
    assert faces.load_templates(store.db)[0].shape == (0, 128)


def test_clusters_save_load_update_and_purge(store: Store) -> None:
    now = datetime(2025, 3, 1, 12, tzinfo=UTC)
    old = faces.StoredCluster(
        None,
        np.ones(128, np.float32),
        3,
        now - timedelta(days=40),
        now - timedelta(days=35),
        {date(2025, 1, 20)},
    )
    new = faces.StoredCluster(None, np.zeros(128, np.float32), 1, now, now, {now.date()})
    faces.save_cluster(store.db, old)
    faces.save_cluster(store.db, new)
    new.samples = 2
    faces.save_cluster(store.db, new)
    loaded = faces.load_clusters(store.db)
    assert [c.samples for c in loaded] == [3, 2]
    assert loaded[0].days_seen == {date(2025, 1, 20)}
    assert faces.purge_clusters(store.db, now - timedelta(days=30)) == 1
    assert [c.id for c in faces.load_clusters(store.db)] == [new.id]


def test_naive_times_are_refused(store: Store) -> None:
    naive = datetime(2025, 3, 1, 12)
    with pytest.raises(ValidationError, match="timezone"):
        faces.save_cluster(
            store.db, faces.StoredCluster(None, np.zeros(128, np.float32), 1, naive, naive)
        )


def test_templates_version_changes_with_every_insert_and_delete(store: Store) -> None:
    empty = faces.templates_version(store.db)
    faces.add_template(store.db, "o1", np.zeros(128), "photo", 0.9)
    one = faces.templates_version(store.db)
    faces.mark_wrong(store.db, "o1", np.ones(128))
    two = faces.templates_version(store.db)
    store.move_out("o1")
    gone = faces.templates_version(store.db)
    assert empty != one != two != gone  # each step is seen by a camera polling in between
