"""The gateway's SQLite store: units, occupants, credentials, the access log and the outbox.

One `Store` owns one connection. The daemon reaches it through `AsyncStore`, which runs every
call on a single worker thread (one writer, never the event loop); the CLI uses `Store` directly.
A decision and its outbox row are written in one transaction with ``synchronous=FULL``, so an
event the door acted on survives a power cut.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlite_utils import Database

from rules import identity
from rules.identity import (
    InvalidIdNumber,
    keyed_hash,
    mask_id_number,
    mask_uid,
    normalise_id_number,
)
from rules.model import (
    Credential,
    CredentialKind,
    CredentialStatus,
    Occupant,
    OccupantStatus,
    Unit,
)
from sync.contract import AccessRecord, Topics, dumps, enrolment_payload, occupant_status_payload
from sync.errors import NotFound, StoreError, StoreFull, ValidationError
from sync.migrations import migrate

_UNIT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A message waiting for the broker's acknowledgement."""

    seq: int
    event_id: str
    topic: str
    payload: str
    attempts: int


def _now() -> str:
    return datetime.now(UTC).isoformat()


def normalise_uid(uid_hex: str) -> str:
    """`rules.identity.normalise_uid`, refusing with the store's `ValidationError`."""
    try:
        return identity.normalise_uid(uid_hex)
    except identity.InvalidUid as err:
        raise ValidationError(str(err)) from None


class Store:
    """Synchronous access to the gateway database.

    Args:
        db: an open sqlite-utils database (already migrated; use `Store.open`).
        secret: the HMAC key for ID numbers and card UIDs (from the credentials directory).
        topics: this gateway's topics; when given, enrolments queue an ``enrolment/request``.
    """

    def __init__(
        self, db: Database, secret: bytes, topics: Topics | None = None, path: Path | None = None
    ) -> None:
        self.db = db
        self.path = path or Path(".")
        self._secret = secret
        self.topics = topics

    @classmethod
    def open(cls, path: Path | str, secret: bytes, topics: Topics | None = None) -> Store:
        """Open (creating if needed) and migrate the database at `path`; WAL, durable commits."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            new = not path.exists()
            conn = sqlite3.connect(str(path), check_same_thread=False, timeout=10)
            if new:
                os.chmod(path, 0o600)
            db = Database(conn)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            migrate(db)
        except sqlite3.Error as err:
            raise StoreError(f"cannot open database {path}: {err}") from err
        return cls(db, secret, topics, path)

    def close(self) -> None:
        """Close the connection (checkpointing the WAL)."""
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """One atomic unit of work; sqlite3 errors become `StoreError`."""
        try:
            with self.db.atomic():
                yield self.db
        except sqlite3.IntegrityError as err:
            raise ValidationError(f"refused by the database: {err}") from err
        except sqlite3.Error as err:
            if getattr(err, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                raise StoreFull(f"database or disk is full: {err}") from err
            raise StoreError(str(err)) from err

    def hash_id_number(self, number: str) -> str:
        """Keyed hash of a normalised resident ID number."""
        return keyed_hash(self._secret, "idcard", number)

    def hash_uid(self, kind: CredentialKind, uid_hex: str) -> str:
        """Keyed hash of a card UID of the given kind."""
        return keyed_hash(self._secret, kind.value, normalise_uid(uid_hex))

    # --- units ---------------------------------------------------------------------------

    def add_unit(self, unit: Unit) -> Unit:
        """Create a unit; its id is the house code."""
        if not _UNIT_ID.match(unit.id):
            raise ValidationError(f"unit id {unit.id!r}: use letters, digits, '-' or '_' (max 32)")
        if unit.capacity < 1:
            raise ValidationError(f"unit {unit.id}: capacity must be at least 1")
        if self.db.table("units").count_where("id = ?", [unit.id]):
            raise ValidationError(f"unit {unit.id} already exists")
        with self.transaction() as db:
            db.table("units").insert({**_unit_row(unit), "created": _now()})
        return unit

    def get_unit(self, unit_id: str) -> Unit:
        """The unit with this id, or `NotFound`."""
        rows = list(self.db.table("units").rows_where("id = ?", [unit_id]))
        if not rows:
            raise NotFound(f"no unit {unit_id!r}")
        return _unit(rows[0])

    def list_units(self) -> list[dict[str, Any]]:
        """Every unit with its approved and pending headcount."""
        sql = """
            SELECT u.*, SUM(o.status = 'approved') AS approved, SUM(o.status = 'pending') AS pending
            FROM units u LEFT JOIN occupants o ON o.unit_id = u.id
            GROUP BY u.id ORDER BY u.building, u.floor, u.room"""
        return [
            {**r, "approved": r["approved"] or 0, "pending": r["pending"] or 0}
            for r in self.db.query(sql)
        ]

    # --- occupants -----------------------------------------------------------------------

    def add_occupant(
        self,
        unit_id: str,
        name: str,
        id_number: str,
        valid_from: date,
        valid_to: date | None,
        *,
        occupant_id: str | None = None,
    ) -> Occupant:
        """Enrol a person in a unit as `pending` (the station, or a landlord, approves later).

        Raises:
            ValidationError: bad ID number, dates, name, unknown unit, or already enrolled.
        """
        self.get_unit(unit_id)
        if not name.strip():
            raise ValidationError("name must not be empty")
        try:
            number = normalise_id_number(id_number)
        except InvalidIdNumber as err:
            raise ValidationError(str(err)) from err
        if valid_to is not None and valid_to < valid_from:
            raise ValidationError(f"tenancy ends ({valid_to}) before it starts ({valid_from})")
        id_hash = self.hash_id_number(number)
        active = "id_hash = ? AND status != 'moved_out'"
        if self.db.table("occupants").count_where(active, [id_hash]):
            raise ValidationError(
                f"a person with ID number {mask_id_number(number)} is already enrolled"
            )
        occupant = Occupant(
            id=occupant_id or uuid.uuid4().hex[:10],
            unit_id=unit_id,
            name=name.strip(),
            id_masked=mask_id_number(number),
            status=OccupantStatus.PENDING,
            valid_from=valid_from,
            valid_to=valid_to,
        )
        with self.transaction() as db:
            now = _now()
            row = {**_occupant_row(occupant), "id_hash": id_hash, "created": now, "updated": now}
            db.table("occupants").insert(row)
            if self.topics is not None:
                request = enrolment_payload(occupant, name, 1, self.topics)
                self._enqueue(db, request["id"], "enrolment/request", dumps(request))
        return occupant

    def get_occupant(self, occupant_id: str) -> Occupant:
        """The occupant with this id, or `NotFound`."""
        rows = list(self.db.table("occupants").rows_where("id = ?", [occupant_id]))
        if not rows:
            raise NotFound(f"no occupant {occupant_id!r}")
        return _occupant(rows[0])

    def list_occupants(self, unit_id: str | None = None) -> list[Occupant]:
        """Occupants, optionally of one unit, ordered by unit and name."""
        where, args = ("unit_id = ?", [unit_id]) if unit_id else (None, [])
        rows = self.db.table("occupants").rows_where(where, args, order_by="unit_id, name")
        return [_occupant(r) for r in rows]

    def approve(self, occupant_id: str, *, by: str, capacity_policy: str = "refuse") -> Occupant:
        """Approve a pending occupant, refusing (or flagging) when the unit would be over capacity.

        Returns the approved occupant. With ``capacity_policy="flag"`` the approval goes through
        and the caller raises an overcrowding alert.
        """
        occupant = self.get_occupant(occupant_id)
        if occupant.status is not OccupantStatus.PENDING:
            raise ValidationError(f"occupant {occupant_id} is {occupant.status}, not pending")
        unit = self.get_unit(occupant.unit_id)
        approved = self.db.table("occupants").count_where(
            "unit_id = ? AND status = 'approved'", [unit.id]
        )
        if approved + 1 > unit.capacity and capacity_policy == "refuse":
            raise ValidationError(
                f"unit {unit.id} holds at most {unit.capacity} persons and already has "
                f"{approved} approved: approving {occupant.name} would overcrowd it"
            )
        return self._set_status(occupant, OccupantStatus.APPROVED, approved_by=by)

    def set_status(self, occupant_id: str, status: OccupantStatus) -> Occupant:
        """Suspend or reinstate an occupant (moving out goes through `move_out`)."""
        return self._set_status(self.get_occupant(occupant_id), status)

    def move_out(self, occupant_id: str) -> Occupant:
        """Mark an occupant moved out: cards revoked and face templates deleted at once.

        A tenant still waiting for approval is withdrawn from the station's queue too.
        """
        occupant = self.get_occupant(occupant_id)
        if occupant.status is OccupantStatus.MOVED_OUT:
            raise ValidationError(f"occupant {occupant_id} has already moved out")
        with self.transaction() as db:
            db.execute(
                "UPDATE credentials SET status = 'revoked' WHERE occupant_id = ?", [occupant_id]
            )
            db.execute("DELETE FROM face_templates WHERE occupant_id = ?", [occupant_id])
            if occupant.status is OccupantStatus.PENDING:
                self._withdraw(db, occupant, "moved_out")
            return self._set_status(occupant, OccupantStatus.MOVED_OUT)

    def reject_declaration(self, occupant_id: str) -> None:
        """Delete a pending (self-declared) occupant with anything bound to them.

        The station forgets the enrolment too: its request is dropped from the outbox if it has
        not left yet, otherwise an ``occupant/status`` ``withdrawn`` follows it.

        Raises:
            NotFound: no such occupant.
            ValidationError: the occupant is no longer pending (approved people move out).
        """
        occupant = self.get_occupant(occupant_id)
        if occupant.status is not OccupantStatus.PENDING:
            raise ValidationError(f"occupant {occupant_id} is {occupant.status}, not pending")
        with self.transaction() as db:
            for table in ("credentials", "face_templates"):
                db.execute(f"DELETE FROM {table} WHERE occupant_id = ?", [occupant_id])
            self._withdraw(db, occupant, "rejected_by_landlord")
            db.execute("DELETE FROM occupants WHERE id = ?", [occupant_id])

    def _withdraw(self, db: Database, occupant: Occupant, reason: str) -> None:
        unsent = db.execute(
            "DELETE FROM outbox WHERE topic = 'enrolment/request' AND json_valid(payload)"
            " AND json_extract(payload, '$.occupant') = ?",
            [occupant.id],
        ).rowcount
        if not unsent:
            self._announce(db, occupant, "withdrawn", reason=reason)

    def _announce(
        self, db: Database, occupant: Occupant, status: str, **extra: str | None
    ) -> None:
        # Status changes made here reach the station with the events, in the same transaction.
        if self.topics is not None:
            message = occupant_status_payload(occupant, status, self.topics, **extra)
            self._enqueue(db, message["id"], "occupant/status", dumps(message))

    def _set_status(self, before: Occupant, status: OccupantStatus, **extra: str) -> Occupant:
        occupant_id = before.id
        fields: dict[str, Any] = {"status": status.value, "updated": _now(), **extra}
        if "approved_by" in extra:
            fields["approved_at"] = fields["updated"]
        with self.transaction() as db:
            db.execute("UPDATE occupants SET version = version + 1 WHERE id = ?", [occupant_id])
            db.table("occupants").update(occupant_id, fields)
            # A pending tenant moving out is announced as withdrawn by `move_out`.
            withdrawn = before.status is OccupantStatus.PENDING and status.value == "moved_out"
            if before.status is not status and not withdrawn:
                self._announce(db, before, status.value, by=extra.get("approved_by"))
        return self.get_occupant(occupant_id)

    # --- changes from the station (signed commands) -------------------------------------

    def use_nonce(self, nonce: str, expires_at: datetime) -> bool:
        """Record a command nonce; False when it was seen before (a replay)."""
        with self.transaction() as db:
            db.execute("DELETE FROM nonces WHERE expires_at < ?", [datetime.now(UTC).isoformat()])
            cursor = db.execute(
                "INSERT OR IGNORE INTO nonces (nonce, expires_at) VALUES (?, ?)",
                [nonce, expires_at.astimezone(UTC).isoformat()],
            )
        return cursor.rowcount == 1

    def apply_station_change(
        self, occupant_id: str, version: int, change: dict[str, Any]
    ) -> tuple[str, Occupant]:
        """Apply a versioned change from the station; idempotent.

        Returns ``("applied", occupant)``, or ``("stale", occupant)`` when `version` is not newer
        than the last one applied (a redelivery or an out-of-order command), which changes nothing.
        ``change`` may hold ``status`` (pending/approved/suspended/moved_out), ``valid_from``,
        ``valid_to`` and ``approved_by``.
        """
        occupant = self.get_occupant(occupant_id)
        row = next(self.db.table("occupants").rows_where("id = ?", [occupant_id]))
        if version <= row["remote_version"]:
            return "stale", occupant
        fields: dict[str, Any] = {"remote_version": version, "updated": _now()}
        for key in ("valid_from", "valid_to", "approved_by"):
            if key in change:
                fields[key] = change[key]
        status = change.get("status")
        if status is not None:
            fields["status"] = status
            if status == OccupantStatus.APPROVED and occupant.status != OccupantStatus.APPROVED:
                fields["approved_at"] = fields["updated"]
                fields.setdefault("approved_by", "station")
        with self.transaction() as db:
            if status in {"suspended", "moved_out"}:
                db.execute(
                    "UPDATE credentials SET status = 'revoked' WHERE occupant_id = ?", [occupant_id]
                )
            if status == "moved_out":
                db.execute("DELETE FROM face_templates WHERE occupant_id = ?", [occupant_id])
            db.execute("UPDATE occupants SET version = version + 1 WHERE id = ?", [occupant_id])
            db.table("occupants").update(occupant_id, fields)
        return "applied", self.get_occupant(occupant_id)

    def snapshot(self) -> list[dict[str, Any]]:
        """Every occupant as the station may see it (masked), for a full resync."""
        sql = """SELECT id, unit_id, id_masked, status, valid_from, valid_to, version,
                 remote_version FROM occupants ORDER BY id"""
        return list(self.db.query(sql))

    def get_state(self, key: str) -> str | None:
        """A value from ``sync_state``."""
        rows = self.db.execute("SELECT value FROM sync_state WHERE key = ?", [key]).fetchall()
        return str(rows[0][0]) if rows else None

    def set_state(self, key: str, value: str) -> None:
        """Store a value in ``sync_state``."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO sync_state (key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [key, value],
            )

    # --- credentials ---------------------------------------------------------------------

    def add_card(self, occupant_id: str, kind: CredentialKind, uid_hex: str) -> Credential:
        """Bind a card to an occupant; the UID is stored only as a keyed hash and a masked form."""
        occupant = self.get_occupant(occupant_id)
        if occupant.status is OccupantStatus.MOVED_OUT:
            raise ValidationError(f"occupant {occupant_id} has moved out: cannot add a card")
        uid = normalise_uid(uid_hex)
        secret_hash = self.hash_uid(kind, uid)
        existing = list(
            self.db.table("credentials").rows_where(
                "kind = ? AND secret_hash = ?", [kind, secret_hash]
            )
        )
        if existing:
            owner = existing[0]["occupant_id"]
            raise ValidationError(f"card {mask_uid(uid)} is already bound to occupant {owner}")
        row = {
            "occupant_id": occupant_id,
            "kind": kind.value,
            "secret_hash": secret_hash,
            "masked": mask_uid(uid),
            "status": CredentialStatus.ACTIVE.value,
            "created": _now(),
        }
        with self.transaction() as db:
            pk = db.table("credentials").insert(row).last_pk
        return Credential(int(str(pk)), occupant_id, kind, CredentialStatus.ACTIVE)

    def list_cards(self, occupant_id: str | None = None) -> list[dict[str, Any]]:
        """Cards (masked), optionally of one occupant."""
        where, args = ("occupant_id = ?", [occupant_id]) if occupant_id else (None, [])
        columns = ["id", "occupant_id", "kind", "masked", "status", "created"]
        return list(self.db.table("credentials").rows_where(where, args, select=", ".join(columns)))

    def resolve_card(
        self, kind: CredentialKind, uid_hex: str
    ) -> tuple[Credential | None, Occupant | None]:
        """Find the credential and occupant for a presented card (both None when unknown)."""
        sql = """
            SELECT c.id AS cid, c.status AS cstatus, o.*
            FROM credentials c JOIN occupants o ON o.id = c.occupant_id
            WHERE c.kind = ? AND c.secret_hash = ?"""
        rows = list(self.db.query(sql, [kind.value, self.hash_uid(kind, uid_hex)]))
        if not rows:
            return None, None
        row = rows[0]
        credential = Credential(int(row["cid"]), row["id"], kind, CredentialStatus(row["cstatus"]))
        return credential, _occupant(row)

    def resolve_id_number(self, id_number: str) -> tuple[Credential | None, Occupant | None]:
        """Find the occupant whose resident ID card was read (以证管人: the card is the credential).

        The newest enrolment that has not moved out wins; a moved-out person is still found, so
        the decision can say "moved out" rather than "unknown". The credential's id 0 names no
        credential row: the rules count an ID card's denials by its keyed hash instead.
        """
        sql = """SELECT * FROM occupants WHERE id_hash = ?
                 ORDER BY status = 'moved_out', created DESC LIMIT 1"""
        rows = list(self.db.query(sql, [self.hash_id_number(id_number.upper())]))
        if not rows:
            return None, None
        occupant = _occupant(rows[0])
        status = (
            CredentialStatus.REVOKED
            if occupant.status is OccupantStatus.MOVED_OUT
            else CredentialStatus.ACTIVE
        )
        return Credential(0, occupant.id, CredentialKind.IDCARD, status), occupant

    # --- access log and outbox -----------------------------------------------------------

    def record_access(self, record: AccessRecord, topic: str, payload: str) -> None:
        """Write the access-log row and its outbox row in one durable transaction."""
        with self.transaction() as db:
            db.table("access_log").insert(
                {
                    "id": record.id,
                    "ts": record.ts.isoformat(),
                    "door": record.door,
                    "direction": record.direction,
                    "kind": record.kind,
                    "occupant_id": record.occupant_id,
                    "unit_id": record.unit_id,
                    "credential_masked": record.credential_masked,
                    "decision": record.decision,
                    "reasons": json.dumps(list(record.reasons)),
                }
            )
            self._enqueue(db, record.id, topic, payload)

    def enqueue(self, event_id: str, topic: str, payload: str) -> None:
        """Queue a message that has no access-log row (door events, alerts, replies)."""
        with self.transaction() as db:
            self._enqueue(db, event_id, topic, payload)

    @staticmethod
    def _enqueue(db: Database, event_id: str, topic: str, payload: str) -> None:
        db.execute(
            "INSERT INTO outbox (event_id, topic, payload, created) VALUES (?, ?, ?, ?)",
            [event_id, topic, payload, _now()],
        )

    def outbox_batch(self, limit: int = 100, after_seq: int = 0) -> list[OutboxRow]:
        """The oldest queued messages after `after_seq`, in order."""
        sql = (
            "SELECT seq, event_id, topic, payload, attempts FROM outbox"
            " WHERE seq > ? ORDER BY seq LIMIT ?"
        )
        return [OutboxRow(*r) for r in self.db.execute(sql, [after_seq, limit]).fetchall()]

    def outbox_delete(self, seqs: list[int]) -> None:
        """Forget messages the broker acknowledged (one statement per batch)."""
        if not seqs:
            return
        with self.transaction() as db:
            marks = ",".join("?" * len(seqs))
            db.execute(f"DELETE FROM outbox WHERE seq IN ({marks})", seqs)

    def purge_access_log(self, older_than: datetime) -> int:
        """Delete access-log rows older than the retention limit; return how many."""
        with self.transaction() as db:
            cursor = db.execute("DELETE FROM access_log WHERE ts < ?", [older_than.isoformat()])
        return int(cursor.rowcount)

    def free_bytes(self) -> int:
        """Room left on the file system that holds the database."""
        return shutil.disk_usage(self.path.parent).free

    def outbox_ids(self) -> set[str]:
        """Event ids still waiting in the outbox."""
        return {r[0] for r in self.db.execute("SELECT event_id FROM outbox").fetchall()}

    def data_version(self) -> int:
        """A number that changes when another connection (the CLI, the portal) commits."""
        return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    def outbox_depth(self) -> int:
        """How many messages wait for the broker."""
        return int(self.db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def access_log(self, limit: int = 50) -> list[dict[str, Any]]:
        """The most recent access-log rows, newest first."""
        return list(self.db.table("access_log").rows_where(order_by="id DESC", limit=limit))

    def access_ids(self) -> set[str]:
        """Every event id in the access log (for loss accounting in the demo and tests)."""
        return {r[0] for r in self.db.execute("SELECT id FROM access_log").fetchall()}


class AsyncStore:
    """Runs `Store` calls on one dedicated thread so the event loop never blocks on SQLite.

    Args:
        store: the store to own (closed with this object).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Call `fn(*args, **kwargs)` on the store thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    async def aclose(self) -> None:
        """Close the database on its own thread, then stop the thread."""
        await self.run(self.store.close)
        self._pool.shutdown(wait=True)


def _unit_row(unit: Unit) -> dict[str, Any]:
    return {
        "id": unit.id,
        "building": unit.building,
        "floor": unit.floor,
        "room": unit.room,
        "capacity": unit.capacity,
        "area_m2": unit.area_m2,
        "landlord": unit.landlord,
    }


def _unit(row: dict[str, Any]) -> Unit:
    return Unit(
        row["id"],
        row["building"],
        row["floor"],
        row["room"],
        row["capacity"],
        row["area_m2"],
        row["landlord"],
    )


def _occupant_row(occupant: Occupant) -> dict[str, Any]:
    return {
        "id": occupant.id,
        "unit_id": occupant.unit_id,
        "name": occupant.name,
        "id_masked": occupant.id_masked,
        "status": occupant.status.value,
        "valid_from": occupant.valid_from.isoformat(),
        "valid_to": occupant.valid_to.isoformat() if occupant.valid_to else None,
    }


def _occupant(row: dict[str, Any]) -> Occupant:
    return Occupant(
        id=row["id"],
        unit_id=row["unit_id"],
        name=row["name"],
        id_masked=row["id_masked"],
        status=OccupantStatus(row["status"]),
        valid_from=date.fromisoformat(row["valid_from"]),
        valid_to=date.fromisoformat(row["valid_to"]) if row["valid_to"] else None,
    )
