"""Numbered schema migrations, applied at start-up, each in its own transaction.

Append new migrations; never edit one that has shipped (gateways in the field have applied it).
"""

from __future__ import annotations

import sqlite3
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

MIGRATIONS.append(
    (
        4,
        "portal: visitor passes, alerts log",
        """
        CREATE TABLE visitor_passes (
            id TEXT PRIMARY KEY,
            unit_id TEXT NOT NULL REFERENCES units(id),
            id_hash TEXT NOT NULL,
            id_masked TEXT NOT NULL,
            name_masked TEXT NOT NULL,
            valid_from TEXT NOT NULL,
            valid_to TEXT NOT NULL,
            max_uses INTEGER CHECK (max_uses IS NULL OR max_uses > 0),
            uses INTEGER NOT NULL DEFAULT 0,
            created_by TEXT NOT NULL,
            created TEXT NOT NULL,
            revoked INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX visitor_passes_unit ON visitor_passes(unit_id);
        CREATE INDEX visitor_passes_id_hash ON visitor_passes(id_hash);
        CREATE TABLE alerts_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id TEXT NOT NULL UNIQUE,
            ts TEXT NOT NULL,
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            state TEXT NOT NULL,
            unit_id TEXT,
            counts TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX alerts_log_unit ON alerts_log(unit_id, ts);
        CREATE INDEX alerts_log_ts ON alerts_log(ts);
        -- Every alert queued for the station is also kept here, in the same transaction as its
        -- outbox row (the outbox forgets it once the broker acknowledged it). The unit is the
        -- payload's, else the unit of the occupant or unit the alert's key names. 90 days kept.
        CREATE TRIGGER outbox_alerts_log AFTER INSERT ON outbox
        WHEN NEW.topic LIKE 'alert/%' AND json_valid(NEW.payload)
        BEGIN
            INSERT OR IGNORE INTO alerts_log (event_id, ts, kind, key, state, unit_id, counts)
            VALUES (
                NEW.event_id,
                COALESCE(json_extract(NEW.payload, '$.ts'), NEW.created),
                substr(NEW.topic, 7),
                COALESCE(json_extract(NEW.payload, '$.key'), ''),
                COALESCE(json_extract(NEW.payload, '$.state'), ''),
                COALESCE(
                    json_extract(NEW.payload, '$.unit'),
                    (SELECT o.unit_id FROM occupants o
                     WHERE o.id = json_extract(NEW.payload, '$.key')),
                    (SELECT u.id FROM units u
                     WHERE u.id = json_extract(NEW.payload, '$.key')
                        OR substr(json_extract(NEW.payload, '$.key'), 1, length(u.id) + 1)
                           = u.id || ':')
                ),
                COALESCE(json_extract(NEW.payload, '$.counts'), '{}')
            );
            DELETE FROM alerts_log WHERE ts < strftime('%Y-%m-%dT%H:%M:%S', 'now', '-90 days');
        END;
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
    # A trigger body holds ";" of its own: pieces are joined until SQLite calls them complete.
    statements: list[str] = []
    pending = ""
    for piece in sql.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            text = pending.strip().removesuffix(";").strip()
            if text and not all(_comment_only(line) for line in text.splitlines()):
                statements.append(text)
            pending = ""
    if pending.strip(" \n;"):
        statements.append(pending.strip().removesuffix(";").strip())
    return statements


def _comment_only(line: str) -> bool:
    return not line.strip() or line.strip().startswith("--")
