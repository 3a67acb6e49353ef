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
