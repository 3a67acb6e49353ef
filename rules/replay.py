"""Scenario replay from JSON Lines: a scripted history run through the daemon's rules.

`doorgate replay FILE.jsonl` reads one JSON object per line, in time order, and feeds it to the
same `rules.engine.step` the daemon calls. This module does no I/O: `Replayer.feed` takes the
text of one line and returns the output objects (plain dicts, ready for `json.dumps`); `replay`
runs a whole iterable of lines. A bad line raises `ReplayError` naming the source, the line
number, the field and the problem, e.g. ``replay.jsonl:7: card.kind: expected one of ic, idcard;
got 'nfc'``, and leaves the replay exactly as it was before that line.

Setup lines (anywhere in the file; a later line with the same id replaces the earlier record
from that point on, e.g. a move-out or a shortened tenancy)::

    {"unit": {"code": "101", "building": "A", "label": "101", "capacity": 2}}
    {"occupant": {"id": "alice", "unit": "101", "status": "approved",
                  "valid_from": "2026-01-01", "valid_to": "2026-12-31",
                  "cards": ["ic:04A1B2C3", "idcard:11010519491231002X"], "face": "alice-face"}}
    {"door": {"id": "main", "mode": "card_or_face", "schedule": ["mon-sun 06:00-02:00"]}}
    {"config": {"building_limit": 40, "night": "23:00-05:00", "denial_threshold": 3}}

``unit``: ``code`` and ``capacity`` are required, ``building`` (default ``"A"``), ``label`` (the
room label, default the code) and ``floor`` (default 1) are optional. ``occupant``: ``id``,
``unit`` and ``valid_from`` are required; ``status`` is ``pending | approved | suspended |
moved_out`` (default approved), ``valid_to`` a date or null, ``cards`` a list of ``ic:HEX`` (4-10
bytes, separators allowed) and ``idcard:NUMBER`` (a valid 18-character resident ID number),
``face`` the label a ``face`` event uses for this person; ``name``, ``submitted_at`` (RFC 3339,
for ``approval_overdue``) and ``welfare_days`` are optional. A card or face label belongs to one
occupant at a time. The cards and face of a moved-out occupant answer as revoked, so the decision
says ``moved_out`` and ``credential_revoked`` rather than ``unknown_credential``. ``door``: ``id``;
``mode`` is ``card | face | card_or_face | card_and_face | idcard_and_face`` (default
card_or_face), ``schedule`` a window text or a list of them (default: always open),
``anti_passback`` an area name. ``config`` (an extension) overrides thresholds of
`rules.engine.RulesConfig`: any of its numeric fields, ``night`` as ``"HH:MM-HH:MM"`` and
``holidays`` as a list of dates.

Event lines carry ``at`` (RFC 3339 with a UTC offset; the wall-clock time at that offset is the
local time the rules see, so write the site's offset, e.g. ``+08:00``), an optional ``id`` (the
event id shown as evidence; default ``L<line number>``) and exactly one of::

    {"at": "2026-03-02T23:30:00+08:00", "card": {"door": "main", "direction": "in",
                                                  "kind": "ic", "value": "04A1B2C3"}}
    {"at": "…", "face": {"door": "main", "direction": "in", "label": "alice-face", "live": true}}
    {"at": "…", "contact": {"door": "main", "state": "open"}}
    {"at": "…", "exit_request": {"door": "main"}}
    {"at": "…", "tick": {}}

``direction`` is ``in`` (default) or ``out``; for a face also null (seen, did not cross). A face
whose label is an occupant's ``face`` is decided like a card of kind ``face``; any other label is
a stranger (the label is the stranger cluster). ``live`` defaults to true; an occupant's face
that is not live is ignored, as the daemon ignores a held-up photo. ``tick`` lets the time-based
rules run (vacancy, tenancy and approval deadlines, stranger windows, offline devices): the
daemon ticks every few seconds, a replay only where the file says so. Extensions:
``{"remote_unlock": {"door"}}`` (the station's unlock command) and ``{"health": {"device",
"kind": "reader"|"camera", "ok"}}`` (device heartbeats, for ``reader_offline`` /
``camera_offline``). Events must not go back in time; every door an event names must have been
declared. Blank lines and lines holding only ``{"#": "a comment"}`` are skipped; a ``"#"`` key is
allowed on every line.

Output objects, one per decision, raised alert and cleared alert, in the order they arose::

    {"at": "…", "decision": {"event": "L7", "door": "main", "allow": false,
                             "verdict": "deny", "reason": "moved_out",
                             "reasons": ["credential_revoked", "moved_out"],
                             "occupant": "alice", "unit": "101"}}
    {"at": "…", "alert": {"kind": "overcrowding", "key": "101", "unit": "101", "scope": "night",
                          "count": 3, "limit": 2, "counts": {"inside": 3, "capacity": 2},
                          "evidence": ["L5", "L6", "L7"]}}
    {"at": "…", "clear": {"kind": "overcrowding", "key": "101", …}}

``reason`` is the first of ``reasons``. An alert names what it is about (``unit``, ``door``,
``occupant``, ``stranger``, ``credential``, ``device``) and, where the rule has them, ``count``
(the measured number) and ``limit`` (the threshold it crossed). People appear only as occupant
ids; card values are looked up by a keyed hash (a fixed replay key) and never printed: a
``repeated_denial`` of an unregistered card is keyed ``card:unknown-1``, ``card:unknown-2``… in
order of first appearance.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime
from typing import Any, TypeVar

from rules.access import DoorMode, DoorPolicy
from rules.alerts import Alert, AlertKind, AlertState
from rules.engine import ROSTER, RulesConfig, RulesState, Site, step
from rules.events import DeviceHealth, DeviceKind, DoorAction, DoorEvent, Event, FaceSighting, Tick
from rules.identity import (
    InvalidIdNumber,
    InvalidUid,
    keyed_hash,
    normalise_id_number,
    normalise_uid,
    short_hash,
)
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
    Verdict,
)
from rules.scenario import parse_night
from rules.timewindows import NightWindow, Schedule

#: The keyed-hash key of a replay: fixed, so two replays of one file agree. Nothing a replay
#: computes leaves the machine, and hashes are never printed.
REPLAY_KEY = b"doorgate-replay-not-a-secret-key"

_MISSING: Any = object()
_MIN_YEAR, _MAX_YEAR = 1900, 9000  # far from datetime's limits, so date arithmetic never overflows
_EVENTS = ("card", "face", "contact", "exit_request", "remote_unlock", "health", "tick")
_SETUP = ("unit", "occupant", "door", "config")
_COMMENT = "#"
#: Largest threshold accepted from a `config` line: ten years, in seconds or in days.
_MAX_SECONDS = 10 * 366 * 86400.0
_MAX_DAYS = 10 * 366

T = TypeVar("T")


class ReplayError(ValueError):
    """A line of a replay that cannot be understood or applied.

    Attributes:
        source: the file name (for messages).
        line: the 1-based line number.
        field: the field at fault, e.g. ``card.kind`` (None for the line as a whole).
        problem: what is wrong.
    """

    def __init__(self, source: str, line: int, field: str | None, problem: str) -> None:
        self.source, self.line, self.field, self.problem = source, line, field, problem
        where = f"{source}:{line}: " + (f"{field}: " if field else "")
        super().__init__(where + problem)


class _Bad(Exception):
    """A problem found while reading a line, before the line number is attached."""

    def __init__(self, field: str | None, problem: str) -> None:
        super().__init__(problem)
        self.field, self.problem = field, problem


def _show(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _Obj:
    """One JSON object of a line, with typed getters that name the field when they fail."""

    def __init__(self, data: object, where: str | None) -> None:
        if not isinstance(data, dict):
            raise _Bad(where, f"expected an object, got {_show(data)}")
        self.data: dict[str, Any] = data
        self.where = where
        self.used: set[str] = {_COMMENT}

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def bad(self, key: str, problem: str) -> _Bad:
        return _Bad(self.path(key), problem)

    def get(self, key: str, default: Any = _MISSING) -> Any:
        self.used.add(key)
        if key in self.data:
            return self.data[key]
        if default is _MISSING:
            raise _Bad(self.where, f"missing required key {key!r}")
        return default

    def text(self, key: str, default: Any = _MISSING) -> Any:
        value = self.get(key, default)
        if value is default and default is not _MISSING:
            return value
        return self.check_text(key, value)

    def check_text(self, key: str, value: object) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.bad(key, f"expected a non-empty string, got {_show(value)}")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise self.bad(key, "expected a string of valid Unicode characters") from None
        if len(value) > 200:
            raise self.bad(key, f"expected at most 200 characters, got {len(value)}")
        return value

    def integer(self, key: str, default: Any = _MISSING, lo: int = 0, hi: int = 10**6) -> Any:
        value = self.get(key, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.bad(key, f"expected an integer, got {_show(value)}")
        if not lo <= value <= hi:
            raise self.bad(key, f"expected an integer from {lo} to {hi}, got {value}")
        return value

    def number(self, key: str, lo: float, hi: float) -> float:
        value = self.get(key)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self.bad(key, f"expected a number, got {_show(value)}")
        if not math.isfinite(value) or not lo < value <= hi:
            raise self.bad(key, f"expected a number above {lo:g} and at most {hi:g}, got {value}")
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.get(key, default)
        if not isinstance(value, bool):
            raise self.bad(key, f"expected true or false, got {_show(value)}")
        return value

    def choice(self, key: str, kind: Callable[[str], T], choices: Iterable[str], default: Any) -> T:
        value = self.get(key, default)
        if value is default and default is not _MISSING:
            return value  # type: ignore[no-any-return]
        names = [str(c) for c in choices]
        if not isinstance(value, str) or value not in names:
            raise self.bad(key, f"expected one of {', '.join(names)}; got {_show(value)}")
        return kind(value)

    def day(self, key: str, default: Any = _MISSING) -> Any:
        value = self.get(key, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            try:
                parsed = date.fromisoformat(value)
            except ValueError:
                pass
            else:
                if _MIN_YEAR <= parsed.year <= _MAX_YEAR:
                    return parsed
        raise self.bad(key, f"expected a date YYYY-MM-DD, got {_show(value)}")

    def moment(self, key: str, default: Any = _MISSING) -> Any:
        value = self.get(key, default)
        if value is default and default is not _MISSING:
            return value
        return _moment(value, self.path(key))

    def obj(self, key: str) -> _Obj:
        return _Obj(self.get(key), self.path(key))

    def finish(self) -> None:
        """Refuse keys nobody read: a typo must not silently change a replay."""
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            names = ", ".join(repr(k if len(k) <= 40 else k[:37] + "...") for k in unknown)
            raise _Bad(self.where, f"unknown key(s) {names}")


def _moment(value: object, where: str) -> datetime:
    problem = "expected an RFC 3339 date and time with a UTC offset, e.g. 2026-03-02T23:30:00+08:00"
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}[Tt ].+", value):
        raise _Bad(where, f"{problem}; got {_show(value)}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _Bad(where, f"{problem}; got {_show(value)}") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise _Bad(where, f"{problem}; got {_show(value)} without an offset")
    if not _MIN_YEAR <= parsed.year <= _MAX_YEAR:
        raise _Bad(where, f"expected a year from {_MIN_YEAR} to {_MAX_YEAR}, got {parsed.year}")
    return parsed


# --- parsed lines -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OccupantLine:
    """An occupant declaration: the record, their cards and their face label.

    Attributes:
        occupant: the occupant.
        cards: (kind, normalised value) of each card.
        face: the face label, if any.
    """

    occupant: Occupant
    cards: tuple[tuple[CredentialKind, str], ...] = ()
    face: str | None = None


@dataclass(frozen=True, slots=True)
class DoorLine:
    """A door declaration.

    Attributes:
        name: the door's name.
        policy: how it admits people.
    """

    name: str
    policy: DoorPolicy


@dataclass(frozen=True, slots=True)
class ConfigLine:
    """Threshold overrides: `RulesConfig` field name to value."""

    values: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class CardLine:
    """A card presented at a reader (the value already normalised)."""

    door: str
    direction: Direction
    kind: CredentialKind
    value: str


@dataclass(frozen=True, slots=True)
class FaceLine:
    """A face the door camera saw."""

    door: str
    direction: Direction | None
    label: str
    live: bool


@dataclass(frozen=True, slots=True)
class DoorActionLine:
    """A door contact change, exit request or remote unlock."""

    door: str
    action: DoorAction


@dataclass(frozen=True, slots=True)
class HealthLine:
    """A device's health report."""

    device: str
    kind: DeviceKind
    ok: bool


@dataclass(frozen=True, slots=True)
class TickLine:
    """Time passes: the time-based rules run."""


Setup = Unit | OccupantLine | DoorLine | ConfigLine
Happening = CardLine | FaceLine | DoorActionLine | HealthLine | TickLine


@dataclass(frozen=True, slots=True)
class EventLine:
    """Something that happened at `at`.

    Attributes:
        at: when (aware: the wall clock at the written offset is the local time).
        event_id: the event id, or None for the default ``L<line>``.
        what: what happened.
        kind: the line's key (``card``, ``face``…), for messages.
    """

    at: datetime
    event_id: str | None
    what: Happening
    kind: str = "tick"


Line = Setup | EventLine


def parse_line(text: str | bytes, line: int = 1, source: str = "<replay>") -> Line | None:
    """Parse and check the shape of one line (None for a blank or comment line).

    References between lines (units, doors, time order) are checked by `Replayer.feed`.

    Raises:
        ReplayError: the line is not JSON, or not a setup or event line as documented.
    """
    try:
        return _parse(text)
    except _Bad as bad:
        raise ReplayError(source, line, bad.field, bad.problem) from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise _Bad(None, f"duplicate key {key!r}")
        data[key] = value
    return data


def _parse(text: str | bytes) -> Line | None:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise _Bad(None, "not valid UTF-8") from None
    text = text.strip().removeprefix("\ufeff")
    if not text:
        return None
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as err:
        raise _Bad(None, f"not valid JSON: {str(err)[:80]}") from None
    root = _Obj(data, None)
    kinds = [k for k in (*_SETUP, *_EVENTS) if k in root.data]
    if not kinds:
        if set(root.data) == {_COMMENT}:
            return None
        expected = ", ".join((*_SETUP, *_EVENTS))
        raise _Bad(None, f"expected one of the keys {expected}")
    if len(kinds) > 1:
        raise _Bad(None, f"expected one of {', '.join(kinds)} per line, not several")
    kind = kinds[0]
    if kind in _SETUP:
        parsed: Line = _SETUP_PARSERS[kind](root.obj(kind))
    else:
        at = root.moment("at")
        event_id = root.text("id", None)
        parsed = EventLine(at, event_id, _EVENT_PARSERS[kind](root.obj(kind)), kind)
    root.finish()
    return parsed


# --- setup lines --------------------------------------------------------------------------------


def _unit(obj: _Obj) -> Unit:
    code = obj.text("code")
    unit = Unit(
        id=code,
        building=obj.text("building", "A"),
        floor=obj.integer("floor", 1, lo=-20, hi=300),
        room=obj.text("label", code),
        capacity=obj.integer("capacity", lo=0, hi=10_000),
    )
    obj.finish()
    return unit


def _occupant(obj: _Obj) -> OccupantLine:
    occupant_id = obj.text("id")
    occupant = Occupant(
        id=occupant_id,
        unit_id=obj.text("unit"),
        name=obj.text("name", occupant_id),
        id_masked="",
        status=obj.choice("status", OccupantStatus, OccupantStatus, OccupantStatus.APPROVED),
        valid_from=obj.day("valid_from"),
        valid_to=obj.day("valid_to", None),
        submitted_at=obj.moment("submitted_at", None),
        welfare_days=obj.integer("welfare_days", None, lo=1, hi=_MAX_DAYS),
    )
    if occupant.valid_to is not None and occupant.valid_to < occupant.valid_from:
        raise obj.bad("valid_to", f"{occupant.valid_to} is before valid_from")
    cards = obj.get("cards", [])
    if not isinstance(cards, list):
        raise obj.bad("cards", f"expected a list of 'ic:HEX' / 'idcard:NUMBER', got {_show(cards)}")
    parsed: dict[tuple[CredentialKind, str], None] = {}
    for index, card in enumerate(cards):
        where = obj.path(f"cards[{index}]")
        if not isinstance(card, str) or card.partition(":")[0] not in ("ic", "idcard"):
            raise _Bad(where, f"expected 'ic:HEX' or 'idcard:NUMBER', got {_show(card)}")
        kind, _, value = card.partition(":")
        parsed[_card_value(CredentialKind(kind), value, where)] = None
    face = obj.get("face", None)
    if face is not None:
        face = obj.check_text("face", face)
    obj.finish()
    return OccupantLine(occupant, tuple(parsed), face)


def _card_value(kind: CredentialKind, value: object, where: str) -> tuple[CredentialKind, str]:
    """Normalise a card value the way the store does, never echoing a valid-looking number."""
    if not isinstance(value, str):
        raise _Bad(where, f"expected a string, got {_show(value)}")
    if kind is CredentialKind.IC:
        try:
            return kind, normalise_uid(value)
        except InvalidUid:
            raise _Bad(where, "expected a card UID of 8-20 hex digits (4-10 bytes)") from None
    try:
        return kind, normalise_id_number(value)
    except InvalidIdNumber as err:
        raise _Bad(where, f"expected a resident ID number: {err}") from None


def _door(obj: _Obj) -> DoorLine:
    name = obj.text("id")
    mode = obj.choice("mode", DoorMode, DoorMode, DoorMode.CARD_OR_FACE)
    texts = obj.get("schedule", [])
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise obj.bad("schedule", f"expected a window text or a list of them, got {_show(texts)}")
    try:
        schedule = Schedule.parse(texts)
    except ValueError as err:
        raise obj.bad("schedule", str(err)) from None
    policy = DoorPolicy(mode, schedule, obj.text("anti_passback", None))
    obj.finish()
    return DoorLine(name, policy)


_NOT_SCALAR = frozenset({"doors", "default_door", "night", "holidays", "capacity_policy"})
_CONFIG_FIELDS = {f.name for f in fields(RulesConfig)} - _NOT_SCALAR
_CONFIG_DEFAULTS = RulesConfig()


def _config(obj: _Obj) -> ConfigLine:
    values: dict[str, Any] = {}
    for key in sorted(obj.data):
        if key == _COMMENT:
            continue
        if key == "night":
            values["night"] = _night(obj)
        elif key == "holidays":
            values["holidays"] = _holidays(obj)
        elif key == "building_limit":
            limit = obj.get(key)
            values[key] = None if limit is None else obj.integer(key, lo=1, hi=10**6)
        elif key in _CONFIG_FIELDS:
            default = getattr(_CONFIG_DEFAULTS, key)
            if isinstance(default, int):
                lo = 0 if key in ("tenancy_notice_days", "approval_working_days") else 1
                values[key] = obj.integer(key, lo=lo, hi=_MAX_DAYS)
            else:
                values[key] = obj.number(key, 0, _MAX_SECONDS)
        else:
            known = ", ".join(sorted((*_CONFIG_FIELDS, "night", "holidays")))
            raise obj.bad(key, f"not a rules setting (known: {known})")
    return ConfigLine(values)


def _night(obj: _Obj) -> NightWindow:
    text = obj.text("night")
    try:
        return parse_night(text)
    except ValueError as err:
        raise obj.bad("night", str(err)) from None


def _holidays(obj: _Obj) -> frozenset[date]:
    days = obj.get("holidays")
    if not isinstance(days, list):
        raise obj.bad("holidays", f"expected a list of dates, got {_show(days)}")
    inner = _Obj({str(i): d for i, d in enumerate(days)}, obj.path("holidays"))
    return frozenset(inner.day(str(i)) for i in range(len(days)))


_SETUP_PARSERS: Mapping[str, Callable[[_Obj], Setup]] = {
    "unit": _unit,
    "occupant": _occupant,
    "door": _door,
    "config": _config,
}


# --- event lines --------------------------------------------------------------------------------

_DIRECTIONS = ("in", "out")


def _card(obj: _Obj) -> Happening:
    door = obj.text("door")
    direction = obj.choice("direction", Direction, _DIRECTIONS, Direction.IN)
    kind = obj.choice("kind", CredentialKind, ("ic", "idcard"), _MISSING)
    _, value = _card_value(kind, obj.get("value"), obj.path("value"))
    obj.finish()
    return CardLine(door, direction, kind, value)


def _face(obj: _Obj) -> Happening:
    door = obj.text("door")
    direction: Direction | None = None
    if obj.get("direction", "in") is not None:
        direction = obj.choice("direction", Direction, _DIRECTIONS, Direction.IN)
    face = FaceLine(door, direction, obj.text("label"), obj.flag("live", True))
    obj.finish()
    return face


def _contact(obj: _Obj) -> Happening:
    door = obj.text("door")
    state = obj.choice("state", str, ("open", "closed"), _MISSING)
    obj.finish()
    return DoorActionLine(door, DoorAction.OPENED if state == "open" else DoorAction.CLOSED)


def _door_action(action: DoorAction) -> Callable[[_Obj], Happening]:
    def parse(obj: _Obj) -> Happening:
        door = obj.text("door")
        obj.finish()
        return DoorActionLine(door, action)

    return parse


def _health(obj: _Obj) -> Happening:
    device = obj.text("device")
    kind = obj.choice("kind", DeviceKind, DeviceKind, DeviceKind.READER)
    health = HealthLine(device, kind, obj.flag("ok", True))
    obj.finish()
    return health


def _tick(obj: _Obj) -> Happening:
    obj.finish()
    return TickLine()


_EVENT_PARSERS: Mapping[str, Callable[[_Obj], Happening]] = {
    "card": _card,
    "face": _face,
    "contact": _contact,
    "exit_request": _door_action(DoorAction.EXIT_REQUEST),
    "remote_unlock": _door_action(DoorAction.GRANT),
    "health": _health,
    "tick": _tick,
}


# --- the replay ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _World:
    """Everything a replay knows besides the rules state; replaced whole, so a bad line is void.

    Attributes:
        config: thresholds and door policies.
        site: units and occupants.
        cards: (kind, value) to occupant id.
        faces: face label to occupant id.
        credential_ids: a stable number per (kind, value) or face label, in order of declaration.
        unknown: keyed hashes of unregistered cards to their printed alias.
        event_ids: event ids used so far.
        last: the time of the latest event.
    """

    config: RulesConfig
    site: Site = field(default_factory=Site)
    cards: Mapping[tuple[CredentialKind, str], str] = field(default_factory=dict)
    faces: Mapping[str, str] = field(default_factory=dict)
    credential_ids: Mapping[str, int] = field(default_factory=dict)
    unknown: Mapping[str, str] = field(default_factory=dict)
    event_ids: frozenset[str] = frozenset()
    last: datetime | None = None


class Replayer:
    """Feeds lines to the rules one at a time, as the daemon feeds events.

    Args:
        config: thresholds and doors to start from (a gateway config's ``[rules]`` and
            ``[[doors]]``); `RulesConfig()` when omitted. ``door`` and ``config`` lines add to it.
        source: the file name, for messages.
    """

    def __init__(self, config: RulesConfig | None = None, source: str = "<replay>") -> None:
        self.source = source
        self.state = RulesState()
        self.world = _World(config or RulesConfig())

    def feed(self, text: str | bytes, line: int) -> list[dict[str, Any]]:
        """Apply one line; return its outputs (decisions, alerts, clears) as JSON-ready dicts.

        Raises:
            ReplayError: the line is malformed or names something undeclared; the replay is
                left as it was before the line.
        """
        parsed = parse_line(text, line, self.source)
        if parsed is None:
            return []
        try:
            if isinstance(parsed, EventLine):
                return self._event(parsed, line)
            self.world = _declare(self.world, parsed)
            return []
        except _Bad as bad:
            raise ReplayError(self.source, line, bad.field, bad.problem) from None

    def _event(self, line: EventLine, number: int) -> list[dict[str, Any]]:
        world = self.world
        if world.last is not None and line.at < world.last:
            raise _Bad(
                "at",
                f"{line.at.isoformat()} is earlier than the previous event "
                f"({world.last.isoformat()}): events must be in time order",
            )
        event_id = line.event_id or f"L{number}"
        if event_id in world.event_ids:
            raise _Bad("id" if line.event_id else None, f"duplicate event id {event_id!r}")
        door = getattr(line.what, "door", None)
        if door is not None and door not in world.config.doors:
            declared = ", ".join(sorted(world.config.doors)) or "none"
            raise _Bad(f"{line.kind}.door", f"no door {door!r} declared (declared: {declared})")
        world, event = _event(world, line, event_id)
        world = replace(world, event_ids=world.event_ids | {event_id}, last=line.at)
        if event is None:
            self.world = world
            return []
        state, outcome = step(self.state, event, line.at, world.config, world.site)
        outputs = [_decision(d, line.at) for d in outcome.decisions]
        outputs += [_alert(world, alert, line.at) for alert in outcome.alerts]
        self.state, self.world = state, world
        return outputs


def replay(
    lines: Iterable[str | bytes], config: RulesConfig | None = None, source: str = "<replay>"
) -> list[dict[str, Any]]:
    """Replay every line (numbered from 1) and return all outputs.

    Raises:
        ReplayError: at the first bad line.
    """
    replayer = Replayer(config, source)
    outputs: list[dict[str, Any]] = []
    for number, text in enumerate(lines, start=1):
        outputs += replayer.feed(text, number)
    return outputs


def _declare(world: _World, line: Setup) -> _World:
    site = world.site
    if isinstance(line, Unit):
        return replace(world, site=replace(site, units={**site.units, line.id: line}))
    if isinstance(line, DoorLine):
        doors = {**world.config.doors, line.name: line.policy}
        return replace(world, config=replace(world.config, doors=doors))
    if isinstance(line, ConfigLine):
        return replace(world, config=replace(world.config, **line.values))
    return _declare_occupant(world, line)


def _declare_occupant(world: _World, line: OccupantLine) -> _World:
    occupant = line.occupant
    if occupant.unit_id not in world.site.units:
        raise _Bad("occupant.unit", f"no unit {occupant.unit_id!r} declared")
    cards = {k: v for k, v in world.cards.items() if v != occupant.id}
    for index, card in enumerate(line.cards):
        holder = cards.get(card)
        if holder is not None:
            raise _Bad(f"occupant.cards[{index}]", f"card already belongs to occupant {holder!r}")
        cards[card] = occupant.id
    faces = {k: v for k, v in world.faces.items() if v != occupant.id}
    if line.face is not None:
        holder = faces.get(line.face)
        if holder is not None:
            raise _Bad(
                "occupant.face", f"face {line.face!r} already belongs to occupant {holder!r}"
            )
        faces[line.face] = occupant.id
    numbers = dict(world.credential_ids)
    keys = [f"{kind}:{value}" for kind, value in line.cards]
    keys += [f"face:{line.face}"] if line.face is not None else []
    for key in keys:
        numbers.setdefault(key, len(numbers) + 1)
    occupants = {**world.site.occupants, occupant.id: occupant}
    site = replace(world.site, occupants=occupants)
    return replace(world, site=site, cards=cards, faces=faces, credential_ids=numbers)


def _credential(world: _World, key: str, occupant: Occupant, kind: CredentialKind) -> Credential:
    moved_out = occupant.status is OccupantStatus.MOVED_OUT
    status = CredentialStatus.REVOKED if moved_out else CredentialStatus.ACTIVE
    return Credential(world.credential_ids[key], occupant.id, kind, status)


def _event(world: _World, line: EventLine, event_id: str) -> tuple[_World, Event | None]:
    what, at = line.what, line.at
    if isinstance(what, CardLine):
        return _card_event(world, what, at, event_id)
    if isinstance(what, FaceLine):
        return world, _face_event(world, what, at, event_id)
    if isinstance(what, DoorActionLine):
        return world, DoorEvent(event_id, at, what.door, what.action)
    if isinstance(what, HealthLine):
        return world, DeviceHealth(event_id, at, what.device, what.kind, what.ok)
    return world, Tick(at)


def _card_event(
    world: _World, card: CardLine, at: datetime, event_id: str
) -> tuple[_World, AccessRequest]:
    """Resolve a card as the daemon does: by keyed hash, to an occupant or to nobody."""
    presented = keyed_hash(REPLAY_KEY, card.kind.value, card.value)
    holder = world.cards.get((card.kind, card.value))
    occupant = world.site.occupants.get(holder) if holder is not None else None
    credential = None
    if occupant is not None:
        credential = _credential(world, f"{card.kind}:{card.value}", occupant, card.kind)
    elif presented not in world.unknown:
        alias = f"unknown-{len(world.unknown) + 1}"
        world = replace(world, unknown={**world.unknown, presented: alias})
    id_hash = presented if card.kind is CredentialKind.IDCARD else None
    request = AccessRequest(
        card.door, card.direction, card.kind, at, credential, occupant, event_id,
        presented=presented, id_hash=id_hash,
    )  # fmt: skip
    return world, request


def _face_event(world: _World, face: FaceLine, at: datetime, event_id: str) -> Event | None:
    """An occupant's live face is decided like a card; any other face is a stranger's."""
    holder = world.faces.get(face.label)
    occupant = world.site.occupants.get(holder) if holder is not None else None
    if occupant is None:
        return FaceSighting(event_id, at, face.door, face.direction, None, face.label)
    if not face.live:
        return None
    if face.direction is None:
        return FaceSighting(event_id, at, face.door, None, occupant.id)
    credential = _credential(world, f"face:{face.label}", occupant, CredentialKind.FACE)
    return AccessRequest(
        face.door, face.direction, CredentialKind.FACE, at, credential, occupant, event_id,
        presented=f"face:{occupant.id}",
    )  # fmt: skip


# --- output -------------------------------------------------------------------------------------


def _decision(decision: Decision, now: datetime) -> dict[str, Any]:
    reasons = [r.value for r in decision.reasons]
    return {
        "at": (decision.at or now).isoformat(),
        "decision": {
            "event": decision.event_id,
            "door": decision.door,
            "allow": decision.verdict is Verdict.ALLOW,
            "verdict": decision.verdict.value,
            "reason": reasons[0] if reasons else None,
            "reasons": reasons,
            "occupant": decision.occupant_id,
            "unit": decision.unit_id,
        },
    }


def _alert(world: _World, alert: Alert, now: datetime) -> dict[str, Any]:
    key, counts = alert.key, dict(alert.counts)
    if alert.kind is AlertKind.REPEATED_DENIAL:
        key = _credential_alias(world, key)  # the rules' key may hold a hash: never printed
    subject, count, limit = _ALERT_VIEWS[alert.kind](world, key, counts)
    body: dict[str, Any] = {"kind": alert.kind.value, "key": key, **subject}
    if count is not None:
        body["count"] = count
    if limit is not None:
        body["limit"] = limit
    body["counts"] = counts
    body["evidence"] = list(alert.evidence)
    head = "alert" if alert.state is AlertState.RAISED else "clear"
    return {"at": (alert.at or now).isoformat(), head: body}


def _credential_alias(world: _World, key: str) -> str:
    """A credential key fit to print: ``credential:<n>`` for a declared card or face, unknown
    cards by alias, never by their hash (the rules key ID cards and unknown cards by a short
    keyed hash, faces by occupant)."""
    prefix, _, rest = key.partition(":")
    if prefix == "credential":
        return key
    if prefix == "face":
        labels = [label for label, holder in world.faces.items() if holder == rest]
        return f"credential:{world.credential_ids[f'face:{labels[0]}']}" if labels else key
    for kind, value in world.cards:
        if short_hash(keyed_hash(REPLAY_KEY, kind.value, value)) == rest:
            return f"credential:{world.credential_ids[f'{kind}:{value}']}"
    for presented, alias in world.unknown.items():
        if short_hash(presented) == rest:
            return f"card:{alias}"
    return "card:unknown"


View = tuple[dict[str, Any], int | None, int | None]


def _occupant_subject(world: _World, occupant_id: str) -> dict[str, Any]:
    occupant = world.site.occupants.get(occupant_id)
    unit = occupant.unit_id if occupant is not None else None
    return {"occupant": occupant_id, "unit": unit}


def _view_overcrowding(world: _World, key: str, counts: dict[str, int]) -> View:
    roster = key.endswith(ROSTER)
    subject = {"unit": key.removesuffix(ROSTER), "scope": "approved" if roster else "night"}
    return subject, counts.get("approved" if roster else "inside"), counts.get("capacity")


def _view_building(world: _World, key: str, counts: dict[str, int]) -> View:
    return {}, counts.get("headcount"), counts.get("limit", world.config.building_limit)


def _view_stranger(world: _World, key: str, counts: dict[str, int]) -> View:
    return {"stranger": key}, counts.get("days"), world.config.stranger_days


def _view_vacancy(world: _World, key: str, counts: dict[str, int]) -> View:
    return _occupant_subject(world, key), counts.get("days_unseen"), counts.get("threshold_days")


def _view_tailgating(world: _World, key: str, counts: dict[str, int]) -> View:
    return {"door": key}, counts.get("persons"), counts.get("grants")


def _view_forced(world: _World, key: str, counts: dict[str, int]) -> View:
    return {"door": key}, None, None


def _view_held(world: _World, key: str, counts: dict[str, int]) -> View:
    return {"door": key}, counts.get("open_s"), math.ceil(world.config.door_held_s)


def _view_denial(world: _World, key: str, counts: dict[str, int]) -> View:
    """`key` is already a printable alias; a declared credential names its current holder."""
    subject: dict[str, Any] = {"credential": key}
    number = key.removeprefix("credential:")
    for credential, credential_id in world.credential_ids.items():
        if str(credential_id) == number:
            kind, _, value = credential.partition(":")
            holder = (
                world.faces.get(value)
                if kind == "face"
                else world.cards.get((CredentialKind(kind), value))
            )
            if holder is not None:
                subject["occupant"] = holder
            break
    return subject, counts.get("denials"), world.config.denial_threshold


def _view_tenancy(world: _World, key: str, counts: dict[str, int]) -> View:
    subject = _occupant_subject(world, key)
    return subject, counts.get("days_left"), world.config.tenancy_notice_days


def _view_approval(world: _World, key: str, counts: dict[str, int]) -> View:
    return _occupant_subject(world, key), None, counts.get("working_days")


def _view_device(world: _World, key: str, counts: dict[str, int]) -> View:
    return {"device": key}, counts.get("silent_s"), math.ceil(world.config.offline_after_s)


_ALERT_VIEWS: Mapping[AlertKind, Callable[[_World, str, dict[str, int]], View]] = {
    AlertKind.OVERCROWDING: _view_overcrowding,
    AlertKind.BUILDING_OVER_CAPACITY: _view_building,
    AlertKind.STRANGER_RECURRING: _view_stranger,
    AlertKind.VACANCY: _view_vacancy,
    AlertKind.TAILGATING: _view_tailgating,
    AlertKind.DOOR_FORCED: _view_forced,
    AlertKind.DOOR_HELD: _view_held,
    AlertKind.REPEATED_DENIAL: _view_denial,
    AlertKind.TENANCY_EXPIRING: _view_tenancy,
    AlertKind.APPROVAL_OVERDUE: _view_approval,
    AlertKind.READER_OFFLINE: _view_device,
    AlertKind.CAMERA_OFFLINE: _view_device,
}
