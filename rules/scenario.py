"""Scenario replay: the rules exercised from a human-written script, without readers or cameras.

A scenario is a TOML (or JSON) document: units, occupants, visitor passes, doors and config
overrides, then a timed list of events and the decisions and alerts expected from them.
`parse_scenario` reads the text (the caller reads the file: rules do no I/O), `replay` runs the
events through `rules.engine.step`, and `check` lists every way the replay missed the
expectations. A malformed document raises `ScenarioError` naming the place and the problem.

Example::

    title = "three tenants in a two-person unit"
    day = 2026-03-02                  # the date of events written as a bare time

    [doors.main]
    mode = "card_or_face"             # card | face | card_or_face | card_and_face | idcard_and_face
    schedule = ["mon-sun 06:00-02:00"]
    anti_passback = "lobby"           # optional anti-passback area

    [config]                          # any RulesConfig field; night = "23:00-05:00"
    building_limit = 40

    [[units]]
    id = "101"
    capacity = 2

    [[occupants]]                     # status defaults to approved, valid_from to 2000-01-01
    id = "alice"
    unit = "101"

    [[events]]                        # id defaults to e1, e2, … in order
    at = 23:30:00                     # a time (rolls to the next day when it goes backwards),
    type = "access"                   # a full datetime, or "+5s" / "+2m" after the previous event
    occupant = "alice"                # access: occupant | card | visitor; kind; direction; door

    [[expect.decisions]]              # the n-th entry for an event matches its n-th decision
    event = "e1"
    verdict = "allow"

    [[expect.alerts]]                 # every alert, in order (set expect.alerts_exact = false
    kind = "overcrowding"             # to check only that these appear in this order)
    key = "101"
    state = "raised"
    evidence = ["e1", "e2", "e3"]
    counts = { inside = 3 }           # only the counts given are compared

Event types: ``access``, ``face`` (occupant | stranger, direction optional), ``door`` (action:
opened | closed | exit_request | grant), ``health`` (device, device_kind, ok) and ``tick``.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar

from rules.access import DoorMode, DoorPolicy
from rules.alerts import Alert, AlertKind, AlertState, CapacityPolicy
from rules.engine import RulesConfig, RulesState, Site, step
from rules.events import DeviceHealth, DeviceKind, DoorAction, DoorEvent, Event, FaceSighting, Tick
from rules.model import (
    AccessRequest,
    Credential,
    CredentialKind,
    CredentialStatus,
    Decision,
    Direction,
    Occupant,
    OccupantStatus,
    Unit,
    VisitorPass,
)
from rules.timewindows import NightWindow, Schedule, parse_clock

E = TypeVar("E")
Output = Decision | Alert
_MISSING: Any = object()
_RELATIVE = re.compile(r"^\+(\d+(?:\.\d+)?)(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ScenarioError(ValueError):
    """A scenario document that cannot be understood; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Expected:
    """One expected decision or alert: only the fields given are compared.

    Attributes:
        where: location in the document, for messages.
        fields: field name to expected value (already parsed).
    """

    where: str
    fields: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Scenario:
    """A parsed scenario.

    Attributes:
        title: what it shows.
        config: thresholds and doors.
        site: units, occupants, visitor passes.
        events: events in time order.
        decisions: expected decisions.
        alerts: expected alerts, in order.
        alerts_exact: whether `alerts` is the complete list.
        source: where the text came from, for messages.
    """

    title: str
    config: RulesConfig
    site: Site
    events: tuple[Event, ...]
    decisions: tuple[Expected, ...] = ()
    alerts: tuple[Expected, ...] = ()
    alerts_exact: bool = True
    source: str = "<scenario>"


class _Table:
    """A table of the document with its location; typed getters that report where they fail."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, Mapping):
            raise ScenarioError(f"{where}: expected a table, got {_show(data)}")
        self.data: Mapping[str, Any] = data
        self.where = where
        self.used: set[str] = set()

    def error(self, key: str, problem: str) -> ScenarioError:
        return ScenarioError(f"{self.where}.{key}: {problem}")

    def get(self, key: str, default: Any = _MISSING) -> Any:
        self.used.add(key)
        if key in self.data:
            return self.data[key]
        if default is _MISSING:
            raise ScenarioError(f"{self.where}: missing required key {key!r}")
        return default

    def text(self, key: str, default: Any = _MISSING) -> Any:
        return self.typed(key, str, "a string", default)

    def integer(self, key: str, default: Any = _MISSING) -> Any:
        value = self.get(key, default)
        if value is default or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        raise self.error(key, f"expected an integer, got {_show(value)}")

    def number(self, key: str, default: Any = _MISSING) -> Any:
        value = self.get(key, default)
        if value is default or (isinstance(value, int | float) and not isinstance(value, bool)):
            return value
        raise self.error(key, f"expected a number, got {_show(value)}")

    def flag(self, key: str, default: Any = _MISSING) -> Any:
        return self.typed(key, bool, "true or false", default)

    def typed(self, key: str, kind: type, what: str, default: Any = _MISSING) -> Any:
        value = self.get(key, default)
        if value is default or isinstance(value, kind):
            return value
        raise self.error(key, f"expected {what}, got {_show(value)}")

    def enum(self, key: str, kind: Callable[[str], E], default: Any = _MISSING) -> E:
        value = self.get(key, default)
        if value is default:
            return value  # type: ignore[no-any-return]
        try:
            return kind(value)
        except ValueError:
            choices = ", ".join(str(c) for c in kind)  # type: ignore[attr-defined]
            raise self.error(key, f"expected one of {choices}; got {_show(value)}") from None

    def day(self, key: str, default: Any = _MISSING) -> Any:
        value = self.get(key, default)
        if value is default or value is None:
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                raise self.error(key, f"expected a date YYYY-MM-DD, got {value!r}") from None
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        raise self.error(key, f"expected a date YYYY-MM-DD, got {_show(value)}")

    def moment(self, key: str, default: Any = _MISSING) -> Any:
        value = self.get(key, default)
        if value is default or value is None or isinstance(value, datetime):
            return value
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value)
            except ValueError:
                raise self.error(key, f"expected a date and time, got {value!r}") from None
        raise self.error(key, f"expected a date and time, got {_show(value)}")

    def tables(self, key: str) -> list[_Table]:
        items = self.get(key, [])
        if not isinstance(items, list):
            raise self.error(key, f"expected a list of tables ([[{key}]]), got {_show(items)}")
        return [_Table(item, f"{self.where}.{key}[{i}]") for i, item in enumerate(items)]

    def finish(self) -> None:
        """Refuse keys nobody read: a typo must not silently change a scenario."""
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ScenarioError(f"{self.where}: unknown key(s) {', '.join(map(repr, unknown))}")


def _show(value: object) -> str:
    return f"{type(value).__name__} {value!r}"


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Parse a scenario from TOML (or JSON when the text starts with ``{``).

    Raises:
        ScenarioError: the text is not valid TOML/JSON or does not describe a scenario; the
            message names the source, the place (e.g. ``events[3].kind``) and the problem.
    """
    try:
        data = json.loads(text) if text.lstrip().startswith("{") else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as err:
        raise ScenarioError(f"{source}: not valid TOML/JSON: {err}") from err
    try:
        return _scenario(_Table(data, "scenario"), source)
    except ScenarioError as err:
        raise ScenarioError(f"{source}: {err}") from None


def _scenario(root: _Table, source: str) -> Scenario:
    title = root.text("title")
    day = root.day("day", None)
    site = _site(root)
    config = _config(root)
    events = _events(root, site, day)
    decisions, alerts, exact = _expectations(root)
    root.finish()
    return Scenario(title, config, site, events, decisions, alerts, exact, source)


# --- site and config ----------------------------------------------------------------------------


def _site(root: _Table) -> Site:
    units = {u.id: u for u in map(_unit, root.tables("units"))}
    occupants: dict[str, Occupant] = {}
    for table in root.tables("occupants"):
        occupant = _occupant(table, units)
        occupants[occupant.id] = occupant
    passes = {p.id_hash: p for p in (_pass(t, units) for t in root.tables("passes"))}
    return Site(units, occupants, passes)


def _unit(table: _Table) -> Unit:
    unit_id = table.text("id")
    unit = Unit(
        id=unit_id,
        building=table.text("building", "A"),
        floor=table.integer("floor", 1),
        room=table.text("room", unit_id),
        capacity=table.integer("capacity"),
    )
    table.finish()
    return unit


def _occupant(table: _Table, units: Mapping[str, Unit]) -> Occupant:
    unit = table.text("unit")
    if unit not in units:
        raise table.error("unit", f"no unit {unit!r} in [[units]]")
    occupant_id = table.text("id")
    occupant = Occupant(
        id=occupant_id,
        unit_id=unit,
        name=table.text("name", occupant_id),
        id_masked=table.text("id_masked", "110105********0000"),
        status=table.enum("status", OccupantStatus, OccupantStatus.APPROVED),
        valid_from=table.day("valid_from", date(2000, 1, 1)),
        valid_to=table.day("valid_to", None),
        submitted_at=table.moment("submitted_at", None),
        welfare_days=table.integer("welfare_days", None),
    )
    table.finish()
    return occupant


def _pass(table: _Table, units: Mapping[str, Unit]) -> VisitorPass:
    host = table.text("host_unit")
    if host not in units:
        raise table.error("host_unit", f"no unit {host!r} in [[units]]")
    visitor_pass = VisitorPass(
        id=table.text("id"),
        host_unit_id=host,
        id_hash=table.text("id_hash"),
        valid_from=table.moment("valid_from"),
        valid_to=table.moment("valid_to"),
        max_uses=table.integer("max_uses", None),
        revoked=table.flag("revoked", False),
    )
    table.finish()
    return visitor_pass


def _config(root: _Table) -> RulesConfig:
    overrides = _Table(root.get("config", {}), "config")
    names = {f.name for f in fields(RulesConfig)} - {"doors", "default_door", "night", "holidays"}
    values: dict[str, Any] = {}
    for key in overrides.data:
        if key in names:
            values[key] = _config_value(overrides, key)
    if "night" in overrides.data:
        values["night"] = _night(overrides)
    if "holidays" in overrides.data:
        values["holidays"] = _holidays(overrides)
    overrides.finish()
    doors = _Table(root.get("doors", {}), "doors")
    values["doors"] = {name: _door(_Table(doors.get(name), f"doors.{name}")) for name in doors.data}
    return RulesConfig(**values)


def _config_value(table: _Table, key: str) -> Any:
    default = getattr(RulesConfig(), key)
    if key == "capacity_policy":
        return table.enum(key, CapacityPolicy)
    if key == "building_limit" or isinstance(default, int):
        return table.integer(key)
    return float(table.number(key))


def parse_night(text: str) -> NightWindow:
    """``"HH:MM-HH:MM"`` as a night window (scenario and replay alike); ValueError if not."""
    start, _, end = text.partition("-")
    try:
        return NightWindow(parse_clock(start), parse_clock(end))
    except ValueError as err:
        raise ValueError(f"expected 'HH:MM-HH:MM': {err}") from None


def _night(table: _Table) -> NightWindow:
    text = table.text("night")  # a ScenarioError is a ValueError too: not inside the try
    try:
        return parse_night(text)
    except ValueError as err:
        raise table.error("night", str(err)) from None


def _holidays(table: _Table) -> frozenset[date]:
    days = table.get("holidays")
    if not isinstance(days, list):
        raise table.error("holidays", f"expected a list of dates, got {_show(days)}")
    inner = _Table({str(i): d for i, d in enumerate(days)}, f"{table.where}.holidays")
    return frozenset(inner.day(str(i)) for i in range(len(days)))


def _door(table: _Table) -> DoorPolicy:
    texts = table.get("schedule", [])
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise table.error("schedule", f"expected a list of strings, got {_show(texts)}")
    try:
        schedule = Schedule.parse(texts)
    except ValueError as err:
        raise table.error("schedule", str(err)) from None
    door = DoorPolicy(table.enum("mode", DoorMode, DoorMode.CARD_OR_FACE), schedule)
    door = replace(door, anti_passback=table.text("anti_passback", None))
    table.finish()
    return door


# --- events -------------------------------------------------------------------------------------


@dataclass
class _Clock:
    """Resolves event times: bare times roll over midnight, ``+5s`` follows the previous event."""

    day: date | None
    last: datetime | None = None
    credential_ids: dict[tuple[str, CredentialKind], int] = field(default_factory=dict)

    def resolve(self, table: _Table) -> datetime:
        at = self._parse(table, table.get("at"))
        if self.last is not None and at < self.last:
            raise table.error("at", f"{at} is earlier than the previous event ({self.last})")
        self.last = at
        return at

    def _parse(self, table: _Table, value: Any) -> datetime:
        if isinstance(value, datetime):
            return value
        if isinstance(value, str) and "T" in value:
            return table.moment("at")  # type: ignore[no-any-return]
        if isinstance(value, str) and (match := _RELATIVE.match(value)):
            if self.last is None:
                raise table.error("at", "a relative time needs an earlier event")
            return self.last + timedelta(seconds=float(match[1]) * _UNITS[match[2]])
        clock = value if isinstance(value, time) else _clock_text(table, value)
        if self.last is not None:
            day = self.last.date()
        elif self.day is not None:
            day = self.day
        else:
            raise table.error("at", "a bare time needs a top-level `day` or an earlier datetime")
        at = datetime.combine(day, clock)
        return at + timedelta(days=1) if self.last is not None and at < self.last else at


def _clock_text(table: _Table, value: Any) -> time:
    if isinstance(value, str):
        try:
            return time.fromisoformat(value)
        except ValueError:
            pass
    raise table.error(
        "at", f"expected a datetime, a time HH:MM[:SS] or +Ns/+Nm, got {_show(value)}"
    )


def _events(root: _Table, site: Site, day: date | None) -> tuple[Event, ...]:
    clock = _Clock(day)
    events: list[Event] = []
    ids: set[str] = set()
    for index, table in enumerate(root.tables("events")):
        event_id = table.text("id", f"e{index + 1}")
        if event_id in ids:
            raise table.error("id", f"duplicate event id {event_id!r}")
        ids.add(event_id)
        at = clock.resolve(table)
        kind = table.text("type")
        builder = _BUILDERS.get(kind)
        if builder is None:
            raise table.error("type", f"expected one of {', '.join(_BUILDERS)}; got {kind!r}")
        events.append(builder(table, event_id, at, site, clock))
        table.finish()
    return tuple(events)


def _access(table: _Table, event_id: str, at: datetime, site: Site, clock: _Clock) -> Event:
    kind = table.enum("kind", CredentialKind, CredentialKind.IC)
    occupant_id = table.text("occupant", None)
    occupant, credential = None, None
    if occupant_id is not None:
        occupant = site.occupants.get(occupant_id)
        if occupant is None:
            raise table.error("occupant", f"no occupant {occupant_id!r} in [[occupants]]")
        number = clock.credential_ids.setdefault((occupant_id, kind), len(clock.credential_ids) + 1)
        status = table.enum("credential_status", CredentialStatus, CredentialStatus.ACTIVE)
        credential = Credential(number, occupant_id, kind, status)
    return AccessRequest(
        door=table.text("door", "main"),
        direction=table.enum("direction", Direction, Direction.IN),
        kind=kind,
        at=at,
        credential=credential,
        occupant=occupant,
        event_id=event_id,
        presented=table.text("card", None),
        id_hash=table.text("visitor", None),
    )


def _face(table: _Table, event_id: str, at: datetime, site: Site, clock: _Clock) -> Event:
    occupant = table.text("occupant", None)
    if occupant is not None and occupant not in site.occupants:
        raise table.error("occupant", f"no occupant {occupant!r} in [[occupants]]")
    direction = table.enum("direction", Direction, None)
    door = table.text("door", "main")
    return FaceSighting(event_id, at, door, direction, occupant, table.text("stranger", None))


def _door_event(table: _Table, event_id: str, at: datetime, site: Site, clock: _Clock) -> Event:
    return DoorEvent(event_id, at, table.text("door", "main"), table.enum("action", DoorAction))


def _health(table: _Table, event_id: str, at: datetime, site: Site, clock: _Clock) -> Event:
    kind = table.enum("device_kind", DeviceKind, DeviceKind.READER)
    return DeviceHealth(event_id, at, table.text("device"), kind, table.flag("ok", True))


def _tick(table: _Table, event_id: str, at: datetime, site: Site, clock: _Clock) -> Event:
    return Tick(at)


_BUILDERS: Mapping[str, Callable[[_Table, str, datetime, Site, _Clock], Event]] = {
    "access": _access,
    "face": _face,
    "door": _door_event,
    "health": _health,
    "tick": _tick,
}


# --- expectations -------------------------------------------------------------------------------

_DECISION_FIELDS = ("event", "verdict", "reasons", "at", "unit", "occupant")
_ALERT_FIELDS = ("kind", "key", "state", "evidence", "counts", "at")


def _expectations(root: _Table) -> tuple[tuple[Expected, ...], tuple[Expected, ...], bool]:
    expect = _Table(root.get("expect", {}), "expect")
    decisions = tuple(_expected(t, _DECISION_FIELDS) for t in expect.tables("decisions"))
    alerts = tuple(_expected(t, _ALERT_FIELDS) for t in expect.tables("alerts"))
    exact = expect.flag("alerts_exact", True)
    expect.finish()
    for item in decisions:
        if "event" not in item.fields:
            raise ScenarioError(f"{item.where}: missing required key 'event'")
    for item in alerts:
        if "kind" not in item.fields or "state" not in item.fields:
            raise ScenarioError(f"{item.where}: an expected alert needs 'kind' and 'state'")
    return decisions, alerts, exact


def _expected(table: _Table, allowed: tuple[str, ...]) -> Expected:
    parsed: dict[str, Any] = {}
    for key in allowed:
        if key in table.data:
            parsed[key] = _expected_value(table, key)
    table.finish()
    return Expected(table.where, parsed)


def _expected_value(table: _Table, key: str) -> Any:  # noqa: PLR0911 - one branch per field
    if key == "verdict":
        return table.text(key)
    if key == "kind":
        return table.enum(key, AlertKind)
    if key == "state":
        return table.enum(key, AlertState)
    if key in ("reasons", "evidence"):
        value = table.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise table.error(key, f"expected a list of strings, got {_show(value)}")
        return tuple(value)
    if key == "counts":
        counts = _Table(table.get(key), f"{table.where}.counts")
        return {name: counts.integer(name) for name in counts.data}
    if key == "at":
        value = table.get(key)
        if isinstance(value, datetime | time):
            return value
        return table.moment(key) if "T" in str(value) else _clock_text(table, value)
    return table.text(key)


# --- replay and check ---------------------------------------------------------------------------


def event_time(event: Event) -> datetime:
    """The local time an event happened."""
    return event.at


def replay(scenario: Scenario, state: RulesState | None = None) -> list[tuple[datetime, Output]]:
    """Run the scenario's events through the engine, each at its own time.

    Returns:
        Every decision and alert, with the time of the step that produced it, in order.
    """
    state = state or RulesState()
    outputs: list[tuple[datetime, Output]] = []
    for event in scenario.events:
        now = event_time(event)
        state, outcome = step(state, event, now, scenario.config, scenario.site)
        outputs += [(now, d) for d in outcome.decisions]
        outputs += [(now, a) for a in outcome.alerts]
    return outputs


def check(scenario: Scenario, outputs: list[tuple[datetime, Output]]) -> list[str]:
    """Every way `outputs` misses the scenario's expectations (empty when all are met)."""
    decisions = [o for _, o in outputs if isinstance(o, Decision)]
    alerts = [o for _, o in outputs if isinstance(o, Alert)]
    return _check_decisions(scenario, decisions) + _check_alerts(scenario, alerts)


def _check_decisions(scenario: Scenario, decisions: list[Decision]) -> list[str]:
    by_event: dict[str | None, list[Decision]] = {}
    for decision in decisions:
        by_event.setdefault(decision.event_id, []).append(decision)
    seen: dict[str, int] = {}
    problems: list[str] = []
    for item in scenario.decisions:
        event = item.fields["event"]
        index = seen[event] = seen.get(event, 0) + 1
        found = by_event.get(event, [])
        if len(found) < index:
            problems.append(f"{item.where}: no decision #{index} for event {event!r}")
            continue
        problems += _compare(item, _decision_view(found[index - 1]))
    return problems


def _check_alerts(scenario: Scenario, alerts: list[Alert]) -> list[str]:
    if scenario.alerts_exact and len(alerts) != len(scenario.alerts):
        listing = "; ".join(_describe(a) for a in alerts) or "none"
        return [f"expected {len(scenario.alerts)} alerts, got {len(alerts)}: {listing}"]
    problems: list[str] = []
    remaining = list(alerts)
    for item in scenario.alerts:
        if scenario.alerts_exact:
            problems += _compare(item, _alert_view(remaining.pop(0)))
            continue
        while remaining and _compare(item, _alert_view(remaining[0])):
            remaining.pop(0)
        if not remaining:
            problems.append(f"{item.where}: no matching alert (in order)")
            break
        remaining.pop(0)
    return problems


def _decision_view(decision: Decision) -> dict[str, Any]:
    return {
        "event": decision.event_id,
        "verdict": decision.verdict.value,
        "reasons": tuple(r.value for r in decision.reasons),
        "at": decision.at,
        "unit": decision.unit_id,
        "occupant": decision.occupant_id,
    }


def _alert_view(alert: Alert) -> dict[str, Any]:
    return {
        "kind": alert.kind,
        "key": alert.key,
        "state": alert.state,
        "evidence": alert.evidence,
        "counts": dict(alert.counts),
        "at": alert.at,
    }


def _compare(item: Expected, actual: Mapping[str, Any]) -> list[str]:
    problems = []
    for key, want in item.fields.items():
        got = actual[key]
        if key == "counts":
            got = {k: got.get(k) for k in want}
        if key == "at" and isinstance(want, time) and got is not None:
            got = got.time()
        if got != want:
            problems.append(f"{item.where}.{key}: expected {want!r}, got {got!r}")
    return problems


def _describe(alert: Alert) -> str:
    return f"{alert.kind} {alert.key} {alert.state} at {alert.at} evidence={list(alert.evidence)}"
