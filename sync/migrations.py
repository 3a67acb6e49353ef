"""Numbered schema migrations, applied at start-up, each in its own transaction.

Append new migrations; never edit one that has shipped (gateways in the field have applied it).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlite_utils import Database

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "initial schema",
        """
        CREATE TABLE units (
            id TEXT PRIMARY KEY,
            building TEXT NOT NULL,
            floor INTEGER NOT NULL,
            room TEXT NOT NULL,
            capacity INTEGER NOT NULL CHECK (capacity > 0),
            area_m2 REAL,
            landlord TEXT,
            created TEXT NOT NULL
        );
        CREATE TABLE occupants (
            id TEXT PRIMARY KEY,
            unit_id TEXT NOT NULL REFERENCES units(id),
            name TEXT NOT NULL,
            id_hash TEXT NOT NULL,
            id_masked TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending','approved','suspended','moved_out')),
            valid_from TEXT NOT NULL,
            valid_to TEXT,
            approved_by TEXT,
            approved_at TEXT,
            version INTEGER NOT NULL DEFAULT 1,
            created TEXT NOT NULL,
            updated TEXT NOT NULL
        );
        CREATE INDEX occupants_unit ON occupants(unit_id);
        CREATE INDEX occupants_id_hash ON occupants(id_hash);
        CREATE TABLE credentials (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            occupant_id TEXT NOT NULL REFERENCES occupants(id),
            kind TEXT NOT NULL CHECK (kind IN ('idcard','ic','face')),
            secret_hash TEXT NOT NULL,
            masked TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('active','revoked')),
            created TEXT NOT NULL,
            UNIQUE (kind, secret_hash)
        );
        CREATE INDEX credentials_occupant ON credentials(occupant_id);
        CREATE TABLE face_templates (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            occupant_id TEXT NOT NULL REFERENCES occupants(id),
            encoding BLOB NOT NULL,
            source TEXT NOT NULL,
            quality REAL NOT NULL,
            negative INTEGER NOT NULL DEFAULT 0,
            created TEXT NOT NULL
        );
        CREATE INDEX face_templates_occupant ON face_templates(occupant_id);
        CREATE TABLE access_log (
            id TEXT PRIMARY KEY,
            ts TEXT NOT NULL,
            door TEXT NOT NULL,
            direction TEXT NOT NULL,
            kind TEXT NOT NULL,
            occupant_id TEXT,
            unit_id TEXT,
            credential_masked TEXT,
            decision TEXT NOT NULL,
            reasons TEXT NOT NULL
        );
        CREATE INDEX access_log_ts ON access_log(ts);
        CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id TEXT NOT NULL UNIQUE,
            topic TEXT NOT NULL,
            payload TEXT NOT NULL,
            created TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE strangers (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            centroid BLOB NOT NULL,
            samples INTEGER NOT NULL DEFAULT 1,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            days_seen TEXT NOT NULL DEFAULT '[]'
        );
        CREATE TABLE sync_state (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        """,
    ),
]

MIGRATIONS.append(
    (
        2,
        "signed downlink: nonces and station versions",
        """
        CREATE TABLE nonces (
            nonce TEXT PRIMARY KEY,
            expires_at TEXT NOT NULL
        );
        ALTER TABLE occupants ADD COLUMN remote_version INTEGER NOT NULL DEFAULT 0;
        """,
    )
)

MIGRATIONS.append(
    (
        3,
        "portal: users, sessions, audit",
        """
        CREATE TABLE portal_users (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL CHECK (role IN ('landlord','station_staff','station_admin')),
            password_hash TEXT NOT NULL,
            created TEXT NOT NULL
        );
        CREATE TABLE portal_sessions (
            token_hash TEXT PRIMARY KEY,
            user_name TEXT NOT NULL REFERENCES portal_users(name) ON DELETE CASCADE,
            created TEXT NOT NULL,
            expires TEXT NOT NULL
        );
        CREATE TABLE portal_audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            unit_id TEXT,
            occupant_id TEXT,
            detail TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX portal_audit_ts ON portal_audit(ts);
        """,
    )
)

LATEST = MIGRATIONS[-1][0]


def _ensure_version_table(db: Database) -> None:
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied TEXT NOT NULL)"
    )


def current_version(db: Database) -> int:
    """The highest migration applied to `db` (0 for a new file)."""
    _ensure_version_table(db)
    row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(db: Database, *, target: int = LATEST) -> list[int]:
    """Apply every pending migration up to `target`; return the numbers applied."""
    applied: list[int] = []
    start = current_version(db)
    for number, name, sql in MIGRATIONS:
        if start < number <= target:
            with db.atomic():
                for statement in _statements(sql):
                    db.execute(statement)
                db.execute(
                    "INSERT INTO schema_version (version, name, applied) VALUES (?, ?, ?)",
                    [number, name, datetime.now(UTC).isoformat()],
                )
            applied.append(number)
    return applied


def _statements(sql: str) -> list[str]:
    # executescript() would COMMIT behind our back; run statement by statement inside atomic().
    return [s.strip() for s in sql.split(";") if s.strip()]
