"""The portal's tables in the gateway database: users, sessions and the audit log.

Works on the same SQLite file as `sync.store.Store` (migration 3). Every enrolment, approval,
move-out, renewal, card binding and remote unlock done from the portal leaves an audit row.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlite_utils import Database

from sync.errors import NotFound, ValidationError
from sync.webauth import ROLES, hash_password, new_token, token_digest, verify_password

SESSION_HOURS = 12


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
        """True when `user` may see and manage `unit_id`."""
        return any(u["id"] == unit_id for u in self.units_for(user))

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
                "SELECT ts, door, direction, kind, occupant_id, credential_masked, decision,"
                " reasons FROM access_log WHERE unit_id = ? ORDER BY ts DESC LIMIT ?",
                [unit_id, limit],
            )
        )
