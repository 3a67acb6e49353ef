"""The store on real SQLite files: migrations, validation, keyed hashes, atomic access records."""

from __future__ import annotations

import sqlite3
import stat
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from rules.model import CredentialKind, CredentialStatus, OccupantStatus, Unit
from sync.contract import AccessRecord
from sync.errors import NotFound, StoreError, ValidationError
from sync.migrations import LATEST, MIGRATIONS, current_version, migrate
from sync.store import Store

SECRET = b"0123456789abcdef0123456789abcdef"
ID_A = "11010519491231002X"
ID_B = "440524188001010014"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "g.db", SECRET)
    s.add_unit(Unit("A-101", "A", 1, "101", 2))
    yield s
    s.close()


def test_open_applies_every_migration_once_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    Store.open(path, SECRET).close()
    store = Store.open(path, SECRET)
    assert current_version(store.db) == LATEST
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    rows = store.db.execute("SELECT version FROM schema_version").fetchall()
    assert [r[0] for r in rows] == [n for n, _, _ in MIGRATIONS]
    assert set(store.db.table_names()) >= {
        "units",
        "occupants",
        "credentials",
        "face_templates",
        "access_log",
        "outbox",
        "strangers",
        "sync_state",
        "schema_version",
    }
    store.close()


def test_database_file_is_private(tmp_path: Path) -> None:
    Store.open(tmp_path / "g.db", SECRET).close()
    assert stat.S_IMODE((tmp_path / "g.db").stat().st_mode) == 0o600


def test_failed_migration_rolls_back_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlite_utils import Database

    db = Database(sqlite3.connect(str(tmp_path / "m.db")))
    broken = [*MIGRATIONS, (LATEST + 1, "broken", "CREATE TABLE extra (x); CREATE TABLE units (y)")]
    monkeypatch.setattr("sync.migrations.MIGRATIONS", broken)
    with pytest.raises(sqlite3.OperationalError):
        migrate(db, target=LATEST + 1)
    assert current_version(db) == LATEST
    assert "extra" not in db.table_names()


def test_corrupt_database_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open database"):
        Store.open(path, SECRET)


def test_occupant_life_cycle(store: Store) -> None:
    occupant = store.add_occupant("A-101", "张三", ID_A.lower(), date(2026, 1, 1), None)
    assert occupant.status is OccupantStatus.PENDING
    assert occupant.id_masked == "110105********002X"
    approved = store.approve(occupant.id, by="station")
    assert approved.status is OccupantStatus.APPROVED
    store.add_card(occupant.id, CredentialKind.IC, "67:00:3b:51:c6")
    moved = store.move_out(occupant.id)
    assert moved.status is OccupantStatus.MOVED_OUT
    credential, _ = store.resolve_card(CredentialKind.IC, "67003B51C6")
    assert credential is not None
    assert credential.status is CredentialStatus.REVOKED


def test_raw_identifiers_never_reach_the_file(store: Store, tmp_path: Path) -> None:
    occupant = store.add_occupant("A-101", "张三", ID_A, date(2026, 1, 1), None)
    store.add_card(occupant.id, CredentialKind.IC, "67003B51C6")
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("g.db*"))
    for secret in (ID_A, "67003B51C6", "67003b51c6", "19491231"):
        assert secret.encode() not in raw


@pytest.mark.parametrize(
    ("id_number", "message"),
    [
        ("110105194912310021", "check character"),
        ("11010519491331002X", "impossible birth date"),
        ("1101051949123100", "17 digits"),
        ("", "17 digits"),
    ],
)
def test_invalid_id_numbers_are_refused_with_reason(
    store: Store, id_number: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        store.add_occupant("A-101", "张三", id_number, date(2026, 1, 1), None)
    assert store.list_occupants() == []


def test_bad_enrolments_say_what_is_wrong(store: Store) -> None:
    with pytest.raises(NotFound, match="no unit 'Z-9'"):
        store.add_occupant("Z-9", "张三", ID_A, date(2026, 1, 1), None)
    with pytest.raises(ValidationError, match="before it starts"):
        store.add_occupant("A-101", "张三", ID_A, date(2026, 5, 1), date(2026, 4, 1))
    store.add_occupant("A-101", "张三", ID_A, date(2026, 1, 1), None)
    with pytest.raises(ValidationError, match="already enrolled"):
        store.add_occupant("A-101", "张三", ID_A, date(2026, 1, 1), None)


def test_approval_refused_beyond_capacity(store: Store) -> None:
    ids = ["11010519900101001", "11010519900101002", "11010519900101003"]
    from rules.identity import check_character

    people = [
        store.add_occupant("A-101", f"p{i}", n + check_character(n), date(2026, 1, 1), None)
        for i, n in enumerate(ids)
    ]
    store.approve(people[0].id, by="x")
    store.approve(people[1].id, by="x")
    with pytest.raises(ValidationError, match="at most 2 persons"):
        store.approve(people[2].id, by="x")
    flagged = store.approve(people[2].id, by="x", capacity_policy="flag")
    assert flagged.status is OccupantStatus.APPROVED


@pytest.mark.parametrize("uid", ["xyz", "12", "67003B51C", "00" * 11])
def test_bad_card_uids_are_refused(store: Store, uid: str) -> None:
    occupant = store.add_occupant("A-101", "张三", ID_A, date(2026, 1, 1), None)
    with pytest.raises(ValidationError, match="hex digits"):
        store.add_card(occupant.id, CredentialKind.IC, uid)


def test_a_card_binds_to_one_person_only(store: Store) -> None:
    a = store.add_occupant("A-101", "张三", ID_A, date(2026, 1, 1), None)
    b = store.add_occupant("A-101", "李四", ID_B, date(2026, 1, 1), None)
    store.add_card(a.id, CredentialKind.IC, "67003B51C6")
    with pytest.raises(ValidationError, match=r"\*\*\*\*\*\*51C6 is already bound"):
        store.add_card(b.id, CredentialKind.IC, "67003b51c6")


def _record(event_id: str) -> AccessRecord:
    return AccessRecord(
        event_id,
        datetime.now(UTC),
        "main",
        "in",
        "ic",
        None,
        None,
        "******51C6",
        "deny",
        ("unknown_credential",),
    )


def test_access_record_and_outbox_row_commit_together(store: Store) -> None:
    store.record_access(_record("e1"), "event/access", "{}")
    assert store.access_ids() == {"e1"}
    assert [r.event_id for r in store.outbox_batch()] == ["e1"]
    # The same event id again violates the outbox's uniqueness: neither row may be written.
    with pytest.raises(ValidationError):
        store.record_access(_record("e1"), "event/access", "{}")
    assert store.outbox_depth() == 1
    assert len(store.access_log()) == 1


def test_outbox_deletes_only_the_acknowledged_rows(store: Store) -> None:
    for i in range(5):
        store.record_access(_record(f"e{i}"), "event/access", "{}")
    rows = store.outbox_batch(limit=3)
    assert [r.event_id for r in rows] == ["e0", "e1", "e2"]
    store.outbox_delete([rows[0].seq, rows[2].seq])
    assert [r.event_id for r in store.outbox_batch()] == ["e1", "e3", "e4"]


def test_outbox_survives_reopening(tmp_path: Path) -> None:
    s = Store.open(tmp_path / "g.db", SECRET)
    s.record_access(_record("kept"), "event/access", "{}")
    s.close()
    s = Store.open(tmp_path / "g.db", SECRET)
    assert [r.event_id for r in s.outbox_batch()] == ["kept"]
    s.close()


@pytest.mark.parametrize("start", range(1, LATEST))
def test_upgrade_from_every_earlier_schema_version(tmp_path: Path, start: int) -> None:
    from sqlite_utils import Database

    path = tmp_path / "old.db"
    db = Database(sqlite3.connect(str(path)))
    migrate(db, target=start)
    now = "2026-01-01T00:00:00+00:00"
    db.execute("INSERT INTO units (id, building, floor, room, capacity, created) VALUES ('A-1', 'A', 1, '1', 2, ?)", [now])
    db.execute(
        "INSERT INTO occupants (id, unit_id, name, id_hash, id_masked, status, valid_from, created, updated)"
        " VALUES ('o1', 'A-1', '张三', 'h', '110105********002X', 'approved', '2026-01-01', ?, ?)", [now, now])
    db.execute("INSERT INTO outbox (event_id, topic, payload, created) VALUES ('e1', 'event/access', '{}', ?)", [now])
    db.conn.commit()
    db.close()
    store = Store.open(path, SECRET)
    assert current_version(store.db) == LATEST
    assert store.get_occupant("o1").status is OccupantStatus.APPROVED
    assert [r.event_id for r in store.outbox_batch()] == ["e1"]
    assert store.apply_station_change("o1", 1, {"status": "suspended"})[0] == "applied"
    store.close()
