"""The station's store: every event once, alerts, enrolments, replies, gateway status.

SQLite by default; PostgreSQL when given a ``postgresql://`` URL (see `station.sql`). The SQL is
written once in the dialect both understand.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from station.sql import connect

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
    "CREATE INDEX IF NOT EXISTS events_gateway_ts ON events (site, gateway, ts)",
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
    """CREATE TABLE IF NOT EXISTS floor_plans (
        site TEXT NOT NULL,
        gateway TEXT NOT NULL,
        ts TEXT NOT NULL,
        payload TEXT NOT NULL,
        PRIMARY KEY (site, gateway))""",
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
    """Events de-duplicated by id, alerts, enrolments, replies and gateway status.

    Args:
        target: a SQLite file path (created if missing) or a ``postgresql://`` URL.
    """

    def __init__(self, target: Path | str) -> None:
        self.db = connect(target)
        with self.db.transaction():
            for statement in _SCHEMA:
                self.db.execute(statement)
        self.duplicates = 0

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    def add_event(self, topic: str, kind: str, payload: dict[str, Any]) -> bool:
        """Store an event; False when its id was already stored (a redelivery)."""
        row = [
            payload["id"], payload["site"], payload["gateway"], topic, kind, payload["ts"],
            _now(), json.dumps(payload, ensure_ascii=False),
        ]
        with self.db.transaction():
            changed = self.db.execute(
                "INSERT INTO events (id, site, gateway, topic, kind, ts, received, payload)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                row,
            )
        if changed == 0:
            self.duplicates += 1
            return False
        return True

    def set_status(self, payload: dict[str, Any]) -> None:
        """Record a gateway's latest status."""
        row = [payload["site"], payload["gateway"], payload["state"], payload["ts"],
               json.dumps(payload, ensure_ascii=False)]
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO gateways (site, gateway, state, ts, payload) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (site, gateway) DO UPDATE SET state = excluded.state,"
                " ts = excluded.ts, payload = excluded.payload",
                row,
            )

    def add_alert(self, payload: dict[str, Any]) -> None:
        """Record a raised or cleared alert (the event row is stored by `add_event`)."""
        row = [payload["id"], payload["site"], payload["gateway"], payload["kind"],
               payload["key"], payload["state"], payload.get("unit"), payload["ts"],
               json.dumps(payload, ensure_ascii=False)]
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO alerts (id, site, gateway, kind, key, state, unit, ts, payload)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                row,
            )

    def open_alerts(self) -> list[dict[str, Any]]:
        """Raised alerts not yet acknowledged, newest first."""
        return self.db.query(
            "SELECT id, site, gateway, kind, key, unit, ts FROM alerts"
            " WHERE state = 'raised' AND acked_at IS NULL ORDER BY ts DESC"
        )

    def ack_alert(self, alert_id: str, by: str) -> bool:
        """Acknowledge a raised alert by id, or by an unambiguous prefix of 8+ characters.

        Returns False when nothing (or more than one alert) matches.
        """
        matches = [a["id"] for a in self.open_alerts()
                   if a["id"] == alert_id or (len(alert_id) >= 8 and a["id"].startswith(alert_id))]
        if len(matches) != 1:
            return False
        with self.db.transaction():
            changed = self.db.execute(
                "UPDATE alerts SET acked_by = ?, acked_at = ? WHERE id = ? AND acked_at IS NULL",
                [by, _now(), matches[0]],
            )
        return changed > 0

    def add_enrolment(self, payload: dict[str, Any]) -> None:
        """Queue a gateway's enrolment request for approval (a re-sent request changes nothing)."""
        row = [payload["site"], payload["gateway"], payload["occupant"], payload["unit"],
               payload["name_masked"], payload["id_masked"], payload["valid_from"],
               payload.get("valid_to"), _now()]
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO enrolments (site, gateway, occupant, unit, name_masked, id_masked,"
                " valid_from, valid_to, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (site, gateway, occupant) DO UPDATE SET unit = excluded.unit,"
                " name_masked = excluded.name_masked, id_masked = excluded.id_masked,"
                " valid_from = excluded.valid_from, valid_to = excluded.valid_to"
                " WHERE enrolments.unit = ''",
                row,
            )

    def occupant_status(self, payload: dict[str, Any]) -> None:
        """Apply a status change the gateway made (``occupant/status``) to the enrolment record.

        A withdrawn or locally approved enrolment leaves the queue (dated by the gateway, so the
        floor plan does not count it twice); a suspension or move-out updates the record.
        """
        when = utc_iso(payload["ts"])
        key = [payload["site"], payload["gateway"], payload["occupant"]]
        status = payload["status"]
        where = " WHERE site = ? AND gateway = ? AND occupant = ?"
        with self.db.transaction():
            if status in {"withdrawn", "approved"}:
                self.db.execute(
                    "UPDATE enrolments SET status = ?, reason = ?, decided_by = ?, decided_at = ?"
                    + where + " AND status = 'pending'",
                    [status, payload.get("reason"), "gateway:" + str(payload.get("by") or ""),
                     when, *key],
                )
            elif status in {"suspended", "moved_out"}:
                self.db.execute(
                    "UPDATE enrolments SET status = ?" + where + " AND status != 'withdrawn'",
                    [status, *key],
                )

    def enrolments(self, status: str | None = "pending") -> list[dict[str, Any]]:
        """Enrolments, by default those waiting for a decision, oldest first."""
        if status is None:
            return self.db.query("SELECT * FROM enrolments ORDER BY received")
        return self.db.query(
            "SELECT * FROM enrolments WHERE status = ? AND unit != '' ORDER BY received", [status]
        )

    def next_command_version(self, site: str, gateway: str, occupant: str) -> int:
        """Reserve the next version number for a command about this occupant."""
        key = [site, gateway, occupant]
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO enrolments (site, gateway, occupant, unit, name_masked, id_masked,"
                " valid_from, received) VALUES (?, ?, ?, '', '', '', '', ?)"
                " ON CONFLICT (site, gateway, occupant) DO NOTHING",
                [*key, _now()],
            )
            self.db.execute(
                "UPDATE enrolments SET command_version = command_version + 1"
                " WHERE site = ? AND gateway = ? AND occupant = ?",
                key,
            )
            rows = self.db.query(
                "SELECT command_version FROM enrolments"
                " WHERE site = ? AND gateway = ? AND occupant = ?",
                key,
            )
        return int(rows[0]["command_version"])

    def decide_enrolment(
        self,
        site: str,
        gateway: str,
        occupant: str,
        status: str,
        *,
        by: str,
        reason: str = "",
        at: str | None = None,
    ) -> None:
        """Record the station's decision on an enrolment.

        Args:
            at: when the command was issued (default now): a gateway snapshot made after it
                already includes the decision.
        """
        with self.db.transaction():
            self.db.execute(
                "UPDATE enrolments SET status = ?, decided_by = ?, decided_at = ?, reason = ?"
                " WHERE site = ? AND gateway = ? AND occupant = ?",
                [status, by, at or _now(), reason, site, gateway, occupant],
            )

    def add_reply(self, payload: dict[str, Any]) -> None:
        """Record a gateway's reply to a command."""
        if not payload.get("command_id"):
            return
        row = [payload["command_id"], payload["site"], payload["gateway"], payload.get("command"),
               int(bool(payload.get("ok"))), payload.get("code", ""), payload.get("message", ""),
               payload["ts"]]
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO replies (command_id, site, gateway, command, ok, code, message, ts)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (command_id) DO UPDATE SET"
                " ok = excluded.ok, code = excluded.code, message = excluded.message,"
                " ts = excluded.ts",
                row,
            )

    def reply(self, command_id: str) -> dict[str, Any] | None:
        """The gateway's reply to a command, if it arrived."""
        rows = self.db.query("SELECT * FROM replies WHERE command_id = ?", [command_id])
        return rows[0] if rows else None

    def event_ids(self) -> set[str]:
        """Every stored event id."""
        return {str(r["id"]) for r in self.db.query("SELECT id FROM events")}

    def recent_events(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest events, newest first, payload decoded."""
        rows = self.db.query(
            "SELECT payload FROM events ORDER BY ts DESC, id DESC LIMIT ?", [limit]
        )
        return [json.loads(r["payload"]) for r in rows]

    def gateways(self) -> list[dict[str, Any]]:
        """Last known status of every gateway."""
        return self.db.query("SELECT * FROM gateways ORDER BY site, gateway")

    def set_floor_plan(self, payload: dict[str, Any]) -> None:
        """Keep a gateway's latest ``units`` snapshot (an older one never replaces a newer)."""
        row = [payload["site"], payload["gateway"], payload["ts"],
               json.dumps(payload, ensure_ascii=False)]
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO floor_plans (site, gateway, ts, payload) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (site, gateway) DO UPDATE SET ts = excluded.ts,"
                " payload = excluded.payload WHERE excluded.ts >= floor_plans.ts",
                row,
            )

    def floor_plan_at(self, site: str, gateway: str) -> tuple[str, list[dict[str, Any]]] | None:
        """When the gateway made its latest snapshot (as `utc_iso`) and its units, or None."""
        rows = self.db.query(
            "SELECT ts, payload FROM floor_plans WHERE site = ? AND gateway = ?", [site, gateway]
        )
        if not rows:
            return None
        units: list[dict[str, Any]] = json.loads(rows[0]["payload"]).get("units", [])
        return utc_iso(rows[0]["ts"]), units

    def floor_plan(self, site: str, gateway: str) -> list[dict[str, Any]] | None:
        """The units of a gateway's latest snapshot, or None if it never sent one."""
        plan = self.floor_plan_at(site, gateway)
        return None if plan is None else plan[1]


def _now() -> str:
    return datetime.now(UTC).isoformat()


def utc_iso(rfc3339: str) -> str:
    """A gateway's RFC 3339 time (``…Z``) as the station stores its own (isoformat, +00:00)."""
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).astimezone(UTC).isoformat()
