"""The portal's tables in the gateway database: users, sessions and the audit log.

Works on the same SQLite file as `sync.store.Store` (migrations 3 and 4). Every enrolment,
approval, move-out, renewal, card binding, visitor pass and remote unlock done from the portal
leaves an audit row. Visitor passes are stored here too (bound to the keyed hash of the visitor's
ID number, never the number), and the unit's recent alerts are read from ``alerts_log``.
"""

from __future__ import annotations

import hmac
import json
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlite_utils import Database

from rules.identity import InvalidIdNumber, mask_id_number, mask_name, normalise_id_number
from rules.model import VisitorPass
from sync.errors import NotFound, ValidationError
from sync.webauth import ROLES, hash_password, new_token, token_digest, verify_password

SESSION_HOURS = 12
MAX_PASS_DAYS = 31  # a visitor pass is for a visit, not a tenancy


def _now() -> datetime:
    return datetime.now(UTC)


class PortalStore:
    """Users, sessions and audit rows of the landlord portal.

    Args:
        db: the gateway's migrated database (``Store.db``).
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- users ---------------------------------------------------------------------------

    def add_user(self, name: str, role: str, password: str) -> None:
        """Create (or replace the password and role of) a portal account.

        Raises:
            ValidationError: unknown role, empty name or a too short password.
        """
        if role not in ROLES:
            raise ValidationError(f"role must be one of {', '.join(ROLES)}")
        if not name.strip():
            raise ValidationError("user name must not be empty")
        try:
            hashed = hash_password(password)
        except ValueError as err:
            raise ValidationError(str(err)) from err
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO portal_users (name, role, password_hash, created) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(name) DO UPDATE SET role = excluded.role,"
                " password_hash = excluded.password_hash",
                [name.strip(), role, hashed, _now().isoformat()],
            )

    def user(self, name: str) -> dict[str, Any]:
        """The account `name` (without its hash), or `NotFound`."""
        rows = list(self.db.query("SELECT name, role FROM portal_users WHERE name = ?", [name]))
        if not rows:
            raise NotFound(f"no portal user {name!r}")
        return rows[0]

    def authenticate(self, name: str, password: str) -> dict[str, Any] | None:
        """The account when `password` is right, else None."""
        rows = list(self.db.query("SELECT * FROM portal_users WHERE name = ?", [name]))
        if not rows or not verify_password(password, rows[0]["password_hash"]):
            return None
        return {"name": rows[0]["name"], "role": rows[0]["role"]}

    # --- sessions ------------------------------------------------------------------------

    def create_session(self, user: str) -> str:
        """A new session for `user`; returns the token for the cookie (stored only hashed)."""
        token = new_token()
        now = _now()
        with self.db.atomic():
            self.db.execute("DELETE FROM portal_sessions WHERE expires < ?", [now.isoformat()])
            self.db.execute(
                "INSERT INTO portal_sessions (token_hash, user_name, created, expires)"
                " VALUES (?, ?, ?, ?)",
                [
                    token_digest(token),
                    user,
                    now.isoformat(),
                    (now + timedelta(hours=SESSION_HOURS)).isoformat(),
                ],
            )
        return token

    def session_user(self, token: str) -> dict[str, Any] | None:
        """The signed-in account for a session token, or None (unknown or expired)."""
        rows = list(
            self.db.query(
                "SELECT u.name, u.role FROM portal_sessions s JOIN portal_users u"
                " ON u.name = s.user_name WHERE s.token_hash = ? AND s.expires > ?",
                [token_digest(token), _now().isoformat()],
            )
        )
        return rows[0] if rows else None

    def end_session(self, token: str) -> None:
        """Sign out: forget the session."""
        with self.db.atomic():
            self.db.execute(
                "DELETE FROM portal_sessions WHERE token_hash = ?", [token_digest(token)]
            )

    # --- audit ---------------------------------------------------------------------------

    def audit(
        self,
        actor: str,
        action: str,
        *,
        unit_id: str | None = None,
        occupant_id: str | None = None,
        detail: str = "",
    ) -> None:
        """Append one audit row (never updated or deleted by the portal)."""
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO portal_audit (ts, actor, action, unit_id, occupant_id, detail)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [_now().isoformat(), actor, action, unit_id, occupant_id, detail],
            )

    def audit_rows(
        self, unit_ids: list[str] | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The newest audit rows, optionally only those about `unit_ids`."""
        if unit_ids is None:
            return list(
                self.db.query("SELECT * FROM portal_audit ORDER BY id DESC LIMIT ?", [limit])
            )
        marks = ",".join("?" * len(unit_ids)) or "NULL"
        return list(
            self.db.query(
                f"SELECT * FROM portal_audit WHERE unit_id IN ({marks}) ORDER BY id DESC LIMIT ?",
                [*unit_ids, limit],
            )
        )

    # --- units, tenancies, entries -------------------------------------------------------

    def units_for(self, user: dict[str, Any]) -> list[dict[str, Any]]:
        """The units `user` may see (a landlord: only their own) with headcounts."""
        sql = """
            SELECT u.*, COALESCE(SUM(o.status = 'approved'), 0) AS approved,
                   COALESCE(SUM(o.status = 'pending'), 0) AS pending
            FROM units u LEFT JOIN occupants o ON o.unit_id = u.id
            {where} GROUP BY u.id ORDER BY u.building, u.floor, u.room"""
        if user["role"] == "landlord":
            return list(self.db.query(sql.format(where="WHERE u.landlord = ?"), [user["name"]]))
        return list(self.db.query(sql.format(where="")))

    def may_see(self, user: dict[str, Any], unit_id: str) -> bool:
        """True when `user` may see and manage `unit_id` (a landlord: only their own)."""
        units = self.db.table("units")
        if user["role"] == "landlord":
            return bool(units.count_where("id = ? AND landlord = ?", [unit_id, user["name"]]))
        return bool(units.count_where("id = ?", [unit_id]))

    def renew(self, occupant_id: str, valid_to: date) -> None:
        """Extend (or shorten) a tenancy; the occupant's version is bumped.

        Raises:
            ValidationError: the new end lies before the tenancy's start, or the tenant moved out.
        """
        rows = list(self.db.query("SELECT * FROM occupants WHERE id = ?", [occupant_id]))
        if not rows:
            raise NotFound(f"no occupant {occupant_id!r}")
        row = rows[0]
        if row["status"] == "moved_out":
            raise ValidationError(f"occupant {occupant_id} has moved out")
        if valid_to < date.fromisoformat(row["valid_from"]):
            start = row["valid_from"]
            raise ValidationError(f"tenancy ends ({valid_to}) before it starts ({start})")
        with self.db.atomic():
            self.db.execute(
                "UPDATE occupants SET valid_to = ?, version = version + 1, updated = ?"
                " WHERE id = ?",
                [valid_to.isoformat(), _now().isoformat(), occupant_id],
            )

    def entries(self, unit_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """The unit's most recent access-log rows (masked card numbers only), newest first."""
        return list(
            self.db.query(
                "SELECT id, ts, door, direction, kind, occupant_id, credential_masked, decision,"
                " reasons FROM access_log WHERE unit_id = ? ORDER BY ts DESC LIMIT ?",
                [unit_id, limit],
            )
        )

    def bind_idcard(self, occupant_id: str, id_hash: str, masked: str) -> None:
        """Record the occupant's own resident ID card as an ``idcard`` credential.

        Raises:
            NotFound: no such occupant.
            ValidationError: the card's ID number is not the occupant's, or they moved out.
        """
        rows = list(
            self.db.query("SELECT id_hash, status FROM occupants WHERE id = ?", [occupant_id])
        )
        if not rows:
            raise NotFound(f"no occupant {occupant_id!r}")
        if rows[0]["status"] == "moved_out":
            raise ValidationError(f"occupant {occupant_id} has moved out")
        if not hmac.compare_digest(rows[0]["id_hash"], id_hash):
            raise ValidationError(f"ID card {masked} is not occupant {occupant_id}'s")
        with self.db.atomic():
            # A person enrolled again after moving out takes their old (revoked) row back.
            self.db.execute(
                "INSERT INTO credentials (occupant_id, kind, secret_hash, masked, status, created)"
                " VALUES (?, 'idcard', ?, ?, 'active', ?) ON CONFLICT(kind, secret_hash)"
                " DO UPDATE SET occupant_id = excluded.occupant_id, status = 'active',"
                " masked = excluded.masked",
                [occupant_id, id_hash, masked, _now().isoformat()],
            )

    def occupant_declared(self, occupant_ids: list[str]) -> dict[str, str]:
        """Of `occupant_ids`, those a tenant declared and no landlord confirmed yet → actor."""
        marks = ",".join("?" * len(occupant_ids)) or "NULL"
        rows = self.db.query(
            f"SELECT occupant_id, action, actor FROM portal_audit WHERE occupant_id IN ({marks})"
            " AND action IN ('declare', 'confirm') ORDER BY id",
            occupant_ids,
        )
        declared: dict[str, str] = {}
        for row in rows:
            if row["action"] == "declare":
                declared[row["occupant_id"]] = row["actor"]
            else:
                declared.pop(row["occupant_id"], None)
        return declared

    # --- visitor passes -----------------------------------------------------------------

    def issue_pass(
        self,
        unit_id: str,
        name: str,
        id_number: str,
        *,
        valid_from: datetime,
        valid_to: datetime,
        max_uses: int | None,
        by: str,
        hash_id: Callable[[str], str],
    ) -> dict[str, Any]:
        """Issue a visitor pass for `unit_id`; only the keyed hash and masked forms are kept.

        Args:
            unit_id: the host unit (the visitor counts against it).
            name: the visitor's name (kept masked: family name only).
            id_number: the visitor's resident ID number (GB 11643 check).
            valid_from: first local time (timezone-aware) the pass opens the door.
            valid_to: last local time.
            max_uses: entries allowed, None for unlimited within the window.
            by: the portal account issuing it.
            hash_id: the gateway's keyed hash of a normalised ID number (`Store.hash_id_number`).

        Raises:
            ValidationError: bad ID number, name, window or uses.
        """
        if not name.strip():
            raise ValidationError("name must not be empty")
        try:
            number = normalise_id_number(id_number)
        except InvalidIdNumber as err:
            raise ValidationError(str(err)) from err
        if valid_from.tzinfo is None or valid_to.tzinfo is None:
            raise ValidationError("pass times must carry a time zone")
        if valid_to <= valid_from:
            raise ValidationError(f"the pass ends ({valid_to}) before it starts ({valid_from})")
        if valid_to - valid_from > timedelta(days=MAX_PASS_DAYS):
            raise ValidationError(f"a visitor pass lasts at most {MAX_PASS_DAYS} days")
        if max_uses is not None and max_uses < 1:
            raise ValidationError("a pass allows at least one entry")
        if not self.db.table("units").count_where("id = ?", [unit_id]):
            raise NotFound(f"no unit {unit_id!r}")
        row = {
            "id": "vp-" + uuid.uuid4().hex[:10],
            "unit_id": unit_id,
            "id_hash": hash_id(number),
            "id_masked": mask_id_number(number),
            "name_masked": mask_name(name),
            "valid_from": valid_from.isoformat(),
            "valid_to": valid_to.isoformat(),
            "max_uses": max_uses,
            "uses": 0,
            "created_by": by,
            "created": _now().isoformat(),
            "revoked": 0,
        }
        with self.db.atomic():
            self.db.table("visitor_passes").insert(row)
        return row

    def passes(self, unit_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The unit's visitor passes (masked), newest first."""
        return list(
            self.db.query(
                "SELECT id, unit_id, id_masked, name_masked, valid_from, valid_to, max_uses, uses,"
                " created_by, created, revoked FROM visitor_passes WHERE unit_id = ?"
                " ORDER BY created DESC LIMIT ?",
                [unit_id, limit],
            )
        )

    def get_pass(self, pass_id: str) -> dict[str, Any]:
        """One pass (masked), or `NotFound`."""
        rows = list(
            self.db.query(
                "SELECT id, unit_id, id_masked, name_masked, valid_from, valid_to, max_uses, uses,"
                " revoked FROM visitor_passes WHERE id = ?",
                [pass_id],
            )
        )
        if not rows:
            raise NotFound(f"no visitor pass {pass_id!r}")
        return rows[0]

    def revoke_pass(self, pass_id: str) -> dict[str, Any]:
        """Withdraw a pass at once (the rules refuse it from the next site reload on)."""
        self.get_pass(pass_id)
        with self.db.atomic():
            self.db.execute("UPDATE visitor_passes SET revoked = 1 WHERE id = ?", [pass_id])
        return self.get_pass(pass_id)

    def set_pass_uses(self, uses: dict[str, int]) -> None:
        """Record entries made per pass (the rules state counts them; this is for display)."""
        if not uses:
            return
        with self.db.atomic():
            self.db.conn.executemany(
                "UPDATE visitor_passes SET uses = ? WHERE id = ? AND uses != ?",
                [(n, pass_id, n) for pass_id, n in uses.items()],
            )

    # --- alerts ---------------------------------------------------------------------------

    def alerts(self, unit_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """The unit's most recent alerts (raised and cleared), newest first."""
        rows = self.db.query(
            "SELECT ts, kind, key, state, counts FROM alerts_log WHERE unit_id = ?"
            " ORDER BY ts DESC, id DESC LIMIT ?",
            [unit_id, limit],
        )
        return [{**r, "counts": json.loads(r["counts"] or "{}")} for r in rows]


def load_passes(db: Database, now: datetime) -> dict[str, VisitorPass]:
    """Visitor passes for the rules, by id hash: those that did not end more than a day ago.

    When one visitor holds several, a live pass wins over a revoked one, one not yet over over
    an ended one, then the one that starts first (a later pass takes over when it ends).
    Recently ended passes stay loaded so a late visitor is told "expired", not "unknown".
    """
    since = now - timedelta(days=1)
    rows = db.query(
        "SELECT id, unit_id, id_hash, valid_from, valid_to, max_uses, revoked FROM visitor_passes"
        " WHERE valid_to >= ?",  # text compare on the date part, with a day to spare for offsets
        [(since - timedelta(days=1)).date().isoformat()],
    )
    best: dict[str, tuple[tuple[bool, bool, float], VisitorPass]] = {}
    for row in rows:
        visitor_pass = VisitorPass(
            id=row["id"],
            host_unit_id=row["unit_id"],
            id_hash=row["id_hash"],
            valid_from=datetime.fromisoformat(row["valid_from"]),
            valid_to=datetime.fromisoformat(row["valid_to"]),
            max_uses=row["max_uses"],
            revoked=bool(row["revoked"]),
        )
        if visitor_pass.valid_to < since:
            continue
        rank = (
            not visitor_pass.revoked,
            visitor_pass.valid_to >= now,
            -visitor_pass.valid_from.timestamp(),
        )
        held = best.get(visitor_pass.id_hash)
        if held is None or rank > held[0]:
            best[visitor_pass.id_hash] = (rank, visitor_pass)
    return {key: visitor_pass for key, (_, visitor_pass) in best.items()}
