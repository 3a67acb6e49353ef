"""The dashboard's own tables (users, sessions, audit) and its views over the station store.

The tables live in the station database next to `station.store`'s, in the SQL both SQLite and
PostgreSQL understand. Floor plans come from each gateway's retained ``units`` snapshot
(capacity, counts, colour), merged with the station's own enrolments and unacknowledged alerts.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from rules.colour import RED_REASONS
from rules.identity import InvalidIdNumber, mask_id_number, normalise_id_number
from station.store import StationStore
from sync.webauth import ROLES, hash_password, new_token, token_digest, verify_password

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS web_users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS web_sessions (
        token_hash TEXT PRIMARY KEY,
        user_name TEXT NOT NULL,
        expires TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS web_audit (
        id TEXT PRIMARY KEY,
        ts TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        detail TEXT NOT NULL)""",
]
STATION_ROLES = ("station_staff", "station_admin")
SESSION_HOURS = 12
_ROOM = re.compile(r"(\d+)\D*$")


def _now() -> datetime:
    return datetime.now(UTC)


def floor_of(unit: str) -> int | None:
    """The floor a house code suggests (``A-1203`` → 12, ``B-201`` → 2), or None."""
    match = _ROOM.search(unit)
    if not match or len(match.group(1)) < 3:
        return None
    return int(match.group(1)[:-2])


class WebStore:
    """Users, sessions, audit and dashboard queries on a `StationStore`.

    Args:
        station: the open station store.
    """

    def __init__(self, station: StationStore) -> None:
        self.station = station
        self.db = station.db
        with self.db.transaction():
            for statement in _SCHEMA:
                self.db.execute(statement)

    # --- accounts ------------------------------------------------------------------------

    def add_user(self, name: str, role: str, password: str) -> None:
        """Create or update a dashboard account (station roles only).

        Raises:
            ValueError: a role outside the station's, an empty name or a short password.
        """
        if role not in ROLES or role not in STATION_ROLES:
            raise ValueError(f"role must be one of {', '.join(STATION_ROLES)}")
        if not name.strip():
            raise ValueError("user name must not be empty")
        hashed = hash_password(password)
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO web_users (name, role, password_hash, created) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET role = excluded.role,"
                " password_hash = excluded.password_hash",
                [name.strip(), role, hashed, _now().isoformat()],
            )

    def authenticate(self, name: str, password: str) -> dict[str, Any] | None:
        """The account when the password is right, else None."""
        rows = self.db.query("SELECT * FROM web_users WHERE name = ?", [name])
        if not rows or not verify_password(password, rows[0]["password_hash"]):
            return None
        return {"name": rows[0]["name"], "role": rows[0]["role"]}

    def create_session(self, user: str) -> str:
        """A new session; returns the cookie token (only its digest is stored)."""
        token, now = new_token(), _now()
        with self.db.transaction():
            self.db.execute("DELETE FROM web_sessions WHERE expires < ?", [now.isoformat()])
            self.db.execute(
                "INSERT INTO web_sessions (token_hash, user_name, expires) VALUES (?, ?, ?)",
                [token_digest(token), user, (now + timedelta(hours=SESSION_HOURS)).isoformat()],
            )
        return token

    def session_user(self, token: str) -> dict[str, Any] | None:
        """The account of a live session, or None."""
        rows = self.db.query(
            "SELECT u.name, u.role FROM web_sessions s JOIN web_users u ON u.name = s.user_name"
            " WHERE s.token_hash = ? AND s.expires > ?",
            [token_digest(token), _now().isoformat()],
        )
        return rows[0] if rows else None

    def end_session(self, token: str) -> None:
        """Forget a session."""
        with self.db.transaction():
            self.db.execute("DELETE FROM web_sessions WHERE token_hash = ?", [token_digest(token)])

    def audit(self, actor: str, action: str, target: str, detail: str = "") -> None:
        """Append an audit row (approvals, rejections, acknowledgements, remote unlocks)."""
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO web_audit (id, ts, actor, action, target, detail)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [uuid.uuid4().hex, _now().isoformat(), actor, action, target, detail],
            )

    def audit_rows(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest audit rows."""
        return self.db.query("SELECT * FROM web_audit ORDER BY ts DESC LIMIT ?", [limit])

    # --- dashboard -----------------------------------------------------------------------

    def has_building(self, site: str, gateway: str) -> bool:
        """Whether anything was ever received from this gateway (what `buildings` lists)."""
        key = [site, gateway]
        return bool(self.db.query(
            "SELECT 1 FROM gateways WHERE site = ? AND gateway = ? UNION"
            " SELECT 1 FROM enrolments WHERE site = ? AND gateway = ? UNION"
            " SELECT 1 FROM events WHERE site = ? AND gateway = ? LIMIT 1",
            [*key, *key, *key],
        ))

    def buildings(self) -> list[dict[str, Any]]:
        """Every gateway seen (status, enrolments or events), with its open alert count."""
        rows = self.db.query(
            "SELECT site, gateway FROM gateways UNION SELECT site, gateway FROM enrolments"
            " UNION SELECT DISTINCT site, gateway FROM events ORDER BY site, gateway"
        )
        states = {(g["site"], g["gateway"]): g["state"] for g in self.station.gateways()}
        open_alerts = self.station.open_alerts()
        alerts = Counter((a["site"], a["gateway"]) for a in open_alerts)
        pending = Counter((e["site"], e["gateway"]) for e in self.station.enrolments())
        plans = self._plan_colours()
        serious = {(a["site"], a["gateway"]) for a in open_alerts if a["kind"] in _SERIOUS_ALERTS}
        result = []
        for r in rows:
            key = (r["site"], r["gateway"])
            counts = plans.get(key, Counter())
            colour = "red" if key in serious or counts["red"] else (
                "yellow" if pending[key] or counts["yellow"] or alerts[key] else
                "green" if counts["green"] else "grey"
            )
            result.append({
                **r, "state": states.get(key, "offline"), "alerts": alerts[key],
                "pending": pending[key], "colour": colour, "units": sum(counts.values()),
                "red": counts["red"], "yellow": counts["yellow"],
            })
        return result

    def _plan_colours(self) -> dict[tuple[str, str], Counter[str]]:
        # One pass over the retained snapshots: units per colour for every gateway.
        colours: dict[tuple[str, str], Counter[str]] = {}
        for row in self.db.query("SELECT site, gateway, payload FROM floor_plans"):
            units = json.loads(row["payload"]).get("units", [])
            colours[(row["site"], row["gateway"])] = Counter(u.get("colour") for u in units)
        return colours

    def access_events(self, site: str, gateway: str, days: int = 30) -> list[dict[str, Any]]:
        """The gateway's access events of the last `days` days, oldest first, decoded."""
        since = (_now() - timedelta(days=days)).isoformat()
        rows = self.db.query(
            "SELECT payload FROM events WHERE site = ? AND gateway = ? AND kind = 'event/access'"
            " AND ts >= ? ORDER BY ts",
            [site, gateway, since],
        )
        return [json.loads(r["payload"]) for r in rows]

    def units(
        self, site: str, gateway: str, events: list[dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        """One row per unit: the gateway's floor plan merged with what the station knows.

        The gateway's retained ``units`` snapshot gives capacity, counts, colour and reasons.
        The station adds what it decided or saw more recently: enrolments still waiting here
        (yellow), and alerts nobody has acknowledged yet (red: a door forced open stays red
        after it closes until someone at the station looks at it). `events`: the gateway's
        access events of at least the last day, when the caller has them already.
        """
        plan_ts, units = self.station.floor_plan_at(site, gateway) or (None, [])
        plan = {u["unit"]: u for u in units}
        enrolments = [
            e for e in self.station.enrolments(None)
            if (e["site"], e["gateway"]) == (site, gateway) and e["unit"]
        ]
        events = _last_day(events) if events is not None else self.access_events(site, gateway, 1)
        alerts = [
            a for a in self.station.open_alerts() if (a["site"], a["gateway"]) == (site, gateway)
        ]
        forced = sorted({a["key"] for a in alerts if a["kind"] == "door_forced"})
        names = set(plan) | {e["unit"] for e in enrolments}
        names |= {e["unit"] for e in events if e.get("unit")}
        names |= {a["unit"] for a in alerts if a["unit"]}
        tonight = _inside(events, _now() - timedelta(hours=12))
        result = []
        for unit in sorted(names):
            mine = [e for e in enrolments if e["unit"] == unit]
            gateway_row = plan.get(unit)
            unit_alerts = [a for a in alerts if a["unit"] == unit]
            row = _merge(
                unit, gateway_row, plan_ts, enrolments=mine, alerts=unit_alerts,
                forced_doors=forced,
            )
            # The gateway recounts on its next tick; the station's own events may be newer.
            row["inside"] = max(row["inside"], len(tonight.get(unit, set())))
            result.append(row)
        return result

    def floors(
        self, site: str, gateway: str, events: list[dict[str, Any]] | None = None
    ) -> list[tuple[int | None, list[dict[str, Any]]]]:
        """The units grouped by floor, top floor first (unknown floors last)."""
        by_floor: dict[int | None, list[dict[str, Any]]] = {}
        for unit in self.units(site, gateway, events):
            by_floor.setdefault(unit["floor"], []).append(unit)
        known = sorted((f for f in by_floor if f is not None), reverse=True)
        order: list[int | None] = [*known, *([None] if None in by_floor else [])]
        return [(f, by_floor[f]) for f in order]

    def entries_per_hour(
        self, site: str, gateway: str, events: list[dict[str, Any]] | None = None
    ) -> list[tuple[str, int]]:
        """Allowed entries in each of the last 24 hours (label ``HH``, count)."""
        now = _now().replace(minute=0, second=0, microsecond=0)
        hours = [now - timedelta(hours=h) for h in range(23, -1, -1)]
        counts: Counter[str] = Counter()
        recent = _last_day(events) if events is not None else self.access_events(site, gateway, 1)
        for event in recent:
            if event.get("decision") == "allow" and event.get("direction") == "in":
                counts[event["ts"][:13]] += 1
        return [(h.strftime("%H"), counts[h.strftime("%Y-%m-%dT%H")]) for h in hours]

    def occupancy_per_day(
        self, site: str, gateway: str, events: list[dict[str, Any]] | None = None
    ) -> list[tuple[str, int]]:
        """Distinct occupants let in on each of the last 30 days (label ``MM-DD``, count)."""
        today = _now().date()
        days = [today - timedelta(days=d) for d in range(29, -1, -1)]
        seen: dict[str, set[str]] = {}
        for event in events if events is not None else self.access_events(site, gateway, 30):
            if event.get("decision") == "allow" and event.get("occupant"):
                seen.setdefault(event["ts"][:10], set()).add(event["occupant"])
        return [(d.strftime("%m-%d"), len(seen.get(d.isoformat(), set()))) for d in days]

    def unit_detail(self, site: str, gateway: str, unit: str) -> dict[str, Any]:
        """Enrolments, recent events and open alerts of one unit (masked data only)."""
        enrolments = [
            e for e in self.station.enrolments(None)
            if (e["site"], e["gateway"], e["unit"]) == (site, gateway, unit)
        ]
        events = [e for e in self.access_events(site, gateway) if e.get("unit") == unit][-30:]
        alerts = self.db.query(
            "SELECT id, kind, key, state, ts, payload, acked_by FROM alerts"
            " WHERE site = ? AND gateway = ? AND unit = ? ORDER BY ts DESC LIMIT 30",
            [site, gateway, unit],
        )
        for alert in alerts:
            alert["evidence"] = json.loads(alert.pop("payload")).get("evidence", [])
        return {"enrolments": enrolments, "events": events[::-1], "alerts": alerts}

    def search(self, query: str) -> list[dict[str, Any]]:
        """Enrolments whose unit, masked ID number or masked name matches `query`.

        A full ID number typed in is masked first, so it is never looked up in clear.
        """
        text = query.strip()
        if not text:
            return []
        with contextlib.suppress(InvalidIdNumber):
            text = mask_id_number(normalise_id_number(text))
        like = f"%{text}%"
        return self.db.query(
            "SELECT * FROM enrolments WHERE unit != '' AND (unit LIKE ? OR id_masked LIKE ?"
            " OR name_masked LIKE ? OR occupant = ?) ORDER BY received DESC LIMIT 100",
            [like, like, like, text],
        )

    def alerts_since(self, after: str) -> list[dict[str, Any]]:
        """Open alerts stored after `after` (an ISO timestamp), oldest first."""
        return [a for a in reversed(self.station.open_alerts()) if a["ts"] > after]


def _last_day(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    since = (_now() - timedelta(days=1)).isoformat()
    return [e for e in events if e["ts"] >= since]


def _merge(
    unit: str,
    plan: dict[str, Any] | None,
    plan_ts: str | None,
    *,
    enrolments: list[dict[str, Any]],
    alerts: list[dict[str, Any]],
    forced_doors: list[str],
) -> dict[str, Any]:
    # The gateway's snapshot is the truth as of its `ts`; what the station saw after it (a new
    # enrolment request, its own approval or rejection, a withdrawal) is applied on top until
    # the next snapshot includes it.
    if plan is None or plan_ts is None:
        pending = sum(e["status"] == "pending" for e in enrolments)
        registered = sum(e["status"] == "approved" for e in enrolments)
        base: dict[str, Any] = {}
    else:
        since = plan_ts
        newer = [e for e in enrolments if (e.get("decided_at") or "") > since]
        approved_since = sum(e["status"] == "approved" for e in newer)
        decided_since = sum(e["status"] in {"approved", "rejected", "withdrawn"} for e in newer)
        arrived_since = sum(e["status"] == "pending" and e["received"] > since for e in enrolments)
        pending = max(0, int(plan.get("pending", 0)) - decided_since) + arrived_since
        registered = int(plan.get("registered", 0)) + approved_since
        base = plan
    reasons = [r for r in base.get("reasons", []) if not r.startswith("pending:")]
    red = [r for r in reasons if r.split(":")[0] in RED_REASONS]
    red += [f"alert:{a['kind']}" for a in alerts]
    red += [f"door_forced:{d}" for d in forced_doors if f"door_forced:{d}" not in red]
    yellow = [r for r in reasons if r not in red] + ([f"pending:{pending}"] if pending else [])
    colour = "red" if red else "yellow" if yellow else ("green" if registered else "grey")
    return {
        "unit": unit,
        "floor": base.get("floor", floor_of(unit)),
        "room": base.get("room", ""),
        "registered": registered,
        "pending": pending,
        "capacity": base.get("capacity"),
        "inside": int(base.get("inside", 0)),
        "alerts": len(alerts),
        "colour": colour,
        "reasons": red + yellow,
    }


#: Alerts that turn a whole building red on the buildings list until acknowledged.
_SERIOUS_ALERTS = {"overcrowding", "door_forced"}


def _inside(events: list[dict[str, Any]], since: datetime) -> dict[str, set[str]]:
    # An occupant is inside when their latest allowed passage since `since` was an entry.
    last: dict[tuple[str, str], str] = {}
    for event in events:
        if event["ts"] < since.isoformat() or event.get("decision") != "allow":
            continue
        if event.get("occupant") and event.get("unit"):
            last[(event["unit"], event["occupant"])] = event.get("direction", "in")
    inside: dict[str, set[str]] = {}
    for (unit, occupant), direction in last.items():
        if direction == "in":
            inside.setdefault(unit, set()).add(occupant)
    return inside
