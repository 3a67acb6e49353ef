"""The station's own SQLite store: every event once, and the last status of each gateway."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS events (
        id TEXT PRIMARY KEY,
        site TEXT NOT NULL,
        gateway TEXT NOT NULL,
        topic TEXT NOT NULL,
        kind TEXT NOT NULL,
        ts TEXT NOT NULL,
        received TEXT NOT NULL,
        payload TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS events_gateway_ts ON events(site, gateway, ts)",
    """CREATE TABLE IF NOT EXISTS gateways (
        site TEXT NOT NULL,
        gateway TEXT NOT NULL,
        state TEXT NOT NULL,
        ts TEXT NOT NULL,
        payload TEXT NOT NULL,
        PRIMARY KEY (site, gateway))""",
    """CREATE TABLE IF NOT EXISTS alerts (
        id TEXT PRIMARY KEY,
        site TEXT NOT NULL,
        gateway TEXT NOT NULL,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        state TEXT NOT NULL,
        unit TEXT,
        ts TEXT NOT NULL,
        payload TEXT NOT NULL,
        acked_by TEXT,
        acked_at TEXT)""",
    "CREATE INDEX IF NOT EXISTS alerts_open ON alerts(state, acked_at)",
    """CREATE TABLE IF NOT EXISTS enrolments (
        site TEXT NOT NULL,
        gateway TEXT NOT NULL,
        occupant TEXT NOT NULL,
        unit TEXT NOT NULL,
        name_masked TEXT NOT NULL,
        id_masked TEXT NOT NULL,
        valid_from TEXT NOT NULL,
        valid_to TEXT,
        status TEXT NOT NULL DEFAULT 'pending',
        command_version INTEGER NOT NULL DEFAULT 0,
        decided_by TEXT,
        decided_at TEXT,
        reason TEXT,
        received TEXT NOT NULL,
        PRIMARY KEY (site, gateway, occupant))""",
    """CREATE TABLE IF NOT EXISTS replies (
        command_id TEXT PRIMARY KEY,
        site TEXT NOT NULL,
        gateway TEXT NOT NULL,
        command TEXT,
        ok INTEGER NOT NULL,
        code TEXT NOT NULL,
        message TEXT NOT NULL,
        ts TEXT NOT NULL)""",
]


class StationStore:
    """Events de-duplicated by id, plus gateway status.

    Args:
        path: the SQLite file (created if missing).
    """

    def __init__(self, path: Path | str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = Database(sqlite3.connect(str(path), check_same_thread=False))
        self.db.execute("PRAGMA journal_mode=WAL")
        with self.db.atomic():
            for statement in _SCHEMA:
                self.db.execute(statement)
        self.duplicates = 0

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    def add_event(self, topic: str, kind: str, payload: dict[str, Any]) -> bool:
        """Store an event; False when its id was already stored (a redelivery)."""
        row = [
            payload["id"],
            payload["site"],
            payload["gateway"],
            topic,
            kind,
            payload["ts"],
            datetime.now(UTC).isoformat(),
            json.dumps(payload, ensure_ascii=False),
        ]
        with self.db.atomic():
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO events"
                " (id, site, gateway, topic, kind, ts, received, payload)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        if cursor.rowcount == 0:
            self.duplicates += 1
            return False
        return True

    def set_status(self, payload: dict[str, Any]) -> None:
        """Record a gateway's latest status."""
        with self.db.atomic():
            self.db.table("gateways").upsert(
                {
                    "site": payload["site"],
                    "gateway": payload["gateway"],
                    "state": payload["state"],
                    "ts": payload["ts"],
                    "payload": json.dumps(payload, ensure_ascii=False),
                },
                pk=("site", "gateway"),
            )

    def add_alert(self, payload: dict[str, Any]) -> None:
        """Record a raised or cleared alert (the event row is stored by `add_event`)."""
        with self.db.atomic():
            self.db.execute(
                "INSERT OR IGNORE INTO alerts"
                " (id, site, gateway, kind, key, state, unit, ts, payload)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    payload["id"],
                    payload["site"],
                    payload["gateway"],
                    payload["kind"],
                    payload["key"],
                    payload["state"],
                    payload.get("unit"),
                    payload["ts"],
                    json.dumps(payload, ensure_ascii=False),
                ],
            )

    def open_alerts(self) -> list[dict[str, Any]]:
        """Raised alerts not yet acknowledged, newest first."""
        sql = (
            "SELECT id, site, gateway, kind, key, unit, ts FROM alerts"
            " WHERE state = 'raised' AND acked_at IS NULL ORDER BY ts DESC"
        )
        return list(self.db.query(sql))

    def ack_alert(self, alert_id: str, by: str) -> bool:
        """Acknowledge an alert; False when no unacknowledged alert has that id (or prefix)."""
        with self.db.atomic():
            cursor = self.db.execute(
                "UPDATE alerts SET acked_by = ?, acked_at = ? WHERE id LIKE ? AND acked_at IS NULL",
                [by, datetime.now(UTC).isoformat(), alert_id + "%"],
            )
        return cursor.rowcount > 0

    def add_enrolment(self, payload: dict[str, Any]) -> None:
        """Queue a gateway's enrolment request for approval (a re-sent request changes nothing)."""
        row = [
            payload["site"],
            payload["gateway"],
            payload["occupant"],
            payload["unit"],
            payload["name_masked"],
            payload["id_masked"],
            payload["valid_from"],
            payload.get("valid_to"),
            datetime.now(UTC).isoformat(),
        ]
        with self.db.atomic():
            self.db.execute(
                "INSERT OR IGNORE INTO enrolments (site, gateway, occupant, unit, name_masked,"
                " id_masked, valid_from, valid_to, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )

    def enrolments(self, status: str | None = "pending") -> list[dict[str, Any]]:
        """Enrolments, by default those waiting for a decision, oldest first."""
        where, args = ("status = ?", [status]) if status else (None, [])
        return list(self.db.table("enrolments").rows_where(where, args, order_by="received"))

    def next_command_version(self, site: str, gateway: str, occupant: str) -> int:
        """Reserve the next version number for a command about this occupant."""
        with self.db.atomic():
            self.db.execute(
                "INSERT OR IGNORE INTO enrolments (site, gateway, occupant, unit, name_masked,"
                " id_masked, valid_from, received) VALUES (?, ?, ?, '?', '?', '?', '?', ?)",
                [site, gateway, occupant, datetime.now(UTC).isoformat()],
            )
            self.db.execute(
                "UPDATE enrolments SET command_version = command_version + 1"
                " WHERE site = ? AND gateway = ? AND occupant = ?",
                [site, gateway, occupant],
            )
            row = self.db.execute(
                "SELECT command_version FROM enrolments"
                " WHERE site = ? AND gateway = ? AND occupant = ?",
                [site, gateway, occupant],
            ).fetchone()
        return int(row[0])

    def decide_enrolment(
        self, site: str, gateway: str, occupant: str, status: str, *, by: str, reason: str = ""
    ) -> None:
        """Record the station's decision on an enrolment."""
        with self.db.atomic():
            self.db.execute(
                "UPDATE enrolments SET status = ?, decided_by = ?, decided_at = ?, reason = ?"
                " WHERE site = ? AND gateway = ? AND occupant = ?",
                [status, by, datetime.now(UTC).isoformat(), reason, site, gateway, occupant],
            )

    def add_reply(self, payload: dict[str, Any]) -> None:
        """Record a gateway's reply to a command."""
        if not payload.get("command_id"):
            return
        with self.db.atomic():
            self.db.execute(
                "INSERT OR REPLACE INTO replies (command_id, site, gateway, command, ok, code,"
                " message, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    payload["command_id"],
                    payload["site"],
                    payload["gateway"],
                    payload.get("command"),
                    int(bool(payload.get("ok"))),
                    payload.get("code", ""),
                    payload.get("message", ""),
                    payload["ts"],
                ],
            )

    def reply(self, command_id: str) -> dict[str, Any] | None:
        """The gateway's reply to a command, if it arrived."""
        rows = list(self.db.table("replies").rows_where("command_id = ?", [command_id]))
        return rows[0] if rows else None

    def event_ids(self) -> set[str]:
        """Every stored event id."""
        return {r[0] for r in self.db.execute("SELECT id FROM events").fetchall()}

    def recent_events(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest events, newest first, payload decoded."""
        rows = self.db.execute(
            "SELECT payload FROM events ORDER BY ts DESC, id DESC LIMIT ?", [limit]
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def gateways(self) -> list[dict[str, Any]]:
        """Last known status of every gateway."""
        return list(self.db.table("gateways").rows_where(order_by="site, gateway"))
