"""The rules engine: one pure `step` from (state, event, now) to (state, decisions, alerts).

The gateway keeps one `RulesState`, calls `step` for every event (and a `Tick` every few
seconds), writes the decisions and alerts to its outbox together with `state.to_dict()`, and
drives the door only afterwards. `Site` is the reference data (units, occupants, visitor passes)
the gateway reads from its store; it is not part of the persisted state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from rules import anomalies, occupancy
from rules.access import AccessState, DoorPolicy, evaluate, expire_pending, tenancy_reasons
from rules.alerts import AlertKind, CapacityPolicy, Episodes, device_offline
from rules.anomalies import DoorCycle
from rules.codec import decode, encode
from rules.events import DeviceHealth, DeviceKind, DoorAction, DoorEvent, Event, FaceSighting, Tick
from rules.identity import short_hash
from rules.model import (
    AccessRequest,
    CredentialKind,
    Decision,
    Direction,
    Occupant,
    OccupantStatus,
    Unit,
    Verdict,
    VisitorPass,
)
from rules.occupancy import OccupancyState, Passage
from rules.outcome import Outcome, StepContext
from rules.timewindows import NightWindow, add_working_days

STATE_VERSION = 1
#: Key suffix of the roster overcrowding episode (approved occupants over capacity).
ROSTER = ":approved"


@dataclass(frozen=True, slots=True)
class RulesConfig:
    """Every threshold of the rules, with the defaults of the issue.

    Attributes:
        doors: policy per door name.
        default_door: policy of a door missing from `doors`.
        night: the overcrowding night window (local time).
        companion_window_s: a stranger entering this close to an occupant counts for their unit.
        factor_window_s: time allowed between the two factors of a two-factor door.
        grant_window_s: a door opened this long after a grant or exit request is not forced.
        door_cycle_s: a door without a contact ends its cycle after this much inactivity.
        door_held_s: open longer than this raises `door_held`.
        denial_threshold: denials of one credential that raise `repeated_denial` ...
        denial_window_s: ... within this many seconds.
        stranger_days: distinct days a stranger cluster must be seen on ...
        stranger_window_days: ... within this many days.
        vacancy_days: an approved occupant unseen this long raises `vacancy`.
        tenancy_notice_days: `tenancy_expiring` is raised this many days before `valid_to`.
        approval_working_days: an enrolment pending longer than this is `approval_overdue`.
        holidays: dates that are not working days.
        building_limit: building headcount limit; None disables `building_over_capacity`.
        offline_after_s: a device silent this long is offline.
        roster_check_s: vacancy, tenancy and approval checks (a pass over every occupant) run on
            a tick at most this often; the cheap checks run on every step.
        capacity_policy: what enrolment over capacity does (see `check_enrolment_capacity`).
    """

    doors: Mapping[str, DoorPolicy] = field(default_factory=dict)
    default_door: DoorPolicy = field(default_factory=DoorPolicy)
    night: NightWindow = field(default_factory=NightWindow)
    companion_window_s: float = 10.0
    factor_window_s: float = 5.0
    grant_window_s: float = 10.0
    door_cycle_s: float = 15.0
    door_held_s: float = 60.0
    denial_threshold: int = 5
    denial_window_s: float = 60.0
    stranger_days: int = 3
    stranger_window_days: int = 7
    vacancy_days: int = 7
    tenancy_notice_days: int = 7
    approval_working_days: int = 2
    holidays: frozenset[date] = frozenset()
    building_limit: int | None = None
    offline_after_s: float = 60.0
    roster_check_s: float = 60.0
    capacity_policy: CapacityPolicy = CapacityPolicy.FLAG

    def door(self, name: str) -> DoorPolicy:
        """The policy of a door (the default one when not configured)."""
        return self.doors.get(name, self.default_door)


@dataclass(frozen=True, slots=True)
class Site:
    """Reference data from the store: who and what the rules know about.

    Attributes:
        units: units by id.
        occupants: occupants by id (every status: pending ones feed `approval_overdue`).
        passes: visitor passes by the keyed hash of the visitor's ID number.
    """

    units: Mapping[str, Unit] = field(default_factory=dict)
    occupants: Mapping[str, Occupant] = field(default_factory=dict)
    passes: Mapping[str, VisitorPass] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Sighting:
    """When an occupant was last seen, and by which event.

    Attributes:
        at: local time.
        event_id: the event.
    """

    at: datetime
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class RulesState:
    """Everything the rules remember between events; persist it with `to_dict`.

    Attributes:
        access: pending factors, anti-passback areas, visitor pass uses.
        occupancy: who is inside.
        doors: the current cycle of each door.
        denials: recent denials by credential key.
        strangers: days each stranger cluster was seen (within the window).
        last_seen: when each occupant was last seen, as of the last roster check.
        seen_recent: sightings since the last roster check. Kept apart so that an access only
            copies this small mapping, not one entry per enrolled occupant.
        roster_checked: when the roster checks last ran.
        devices: when each device last reported healthy.
        episodes: alerts currently raised.
    """

    access: AccessState = field(default_factory=AccessState)
    occupancy: OccupancyState = field(default_factory=OccupancyState)
    doors: Mapping[str, DoorCycle] = field(default_factory=dict)
    denials: Mapping[str, tuple[tuple[datetime, str], ...]] = field(default_factory=dict)
    strangers: Mapping[str, tuple[tuple[date, str], ...]] = field(default_factory=dict)
    last_seen: Mapping[str, Sighting] = field(default_factory=dict)
    seen_recent: Mapping[str, Sighting] = field(default_factory=dict)
    roster_checked: datetime | None = None
    devices: Mapping[str, tuple[DeviceKind, datetime]] = field(default_factory=dict)
    episodes: Episodes = field(default_factory=Episodes)

    def seen(self, occupant_id: str) -> Sighting | None:
        """When an occupant was last seen, if ever."""
        return self.seen_recent.get(occupant_id) or self.last_seen.get(occupant_id)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (ISO times, enum values), versioned for future migrations."""
        return {"version": STATE_VERSION, **encode(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RulesState:
        """Rebuild the state `to_dict` produced.

        Raises:
            ValueError: unknown state version or a malformed document.
        """
        fields = dict(data)
        version = fields.pop("version", None)
        if version != STATE_VERSION:
            raise ValueError(f"rules state version {version!r} is not {STATE_VERSION}")
        try:
            return decode(cls, fields)
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"malformed rules state: {err}") from err


def step(
    state: RulesState, event: Event, now: datetime, config: RulesConfig, site: Site | None = None
) -> tuple[RulesState, Outcome]:
    """Apply one event at local time `now`; return the new state and what to act on.

    Args:
        state: the state after the previous event.
        event: what happened.
        now: the local time of processing (normally the event's time).
        config: thresholds and door policies.
        site: units, occupants and visitor passes; empty when omitted.

    Returns:
        The new state, and the outcome: access decisions (the last one answers an access
        event; earlier ones are timeouts of two-factor doors) and alerts, in order.
    """
    ctx = StepContext(state.episodes, now)
    site = site or Site()
    state = _dispatch(state, event, ctx, config, site)
    state = _fast_checks(state, ctx, config, site)
    if isinstance(event, Tick):
        state = _tick_checks(state, ctx, config, site)
    return replace(state, episodes=ctx.episodes), ctx.outcome()


def _dispatch(
    state: RulesState, event: Event, ctx: StepContext, config: RulesConfig, site: Site
) -> RulesState:
    if isinstance(event, AccessRequest):
        return _on_access(state, event, ctx, config, site)
    if isinstance(event, FaceSighting):
        return _on_face(state, event, ctx, config, site)
    if isinstance(event, DoorEvent):
        return _on_door(state, event, ctx, config)
    if isinstance(event, DeviceHealth):
        return _on_health(state, event, ctx)
    return state


# --- access -------------------------------------------------------------------------------------


def _on_access(
    state: RulesState, request: AccessRequest, ctx: StepContext, config: RulesConfig, site: Site
) -> RulesState:
    if request.visitor_pass is None and request.occupant is None and request.id_hash:
        request = replace(request, visitor_pass=site.passes.get(request.id_hash))
    window = timedelta(seconds=config.factor_window_s)
    access, decisions = evaluate(state.access, request, config.door(request.door), window)
    state = replace(state, access=access)
    ctx.decisions.extend(decisions)
    if request.occupant is not None:
        state = _seen(state, ctx, request.occupant.id, request.at, request.event_id)
    final = decisions[-1]
    if final.allowed:
        return _granted(state, ctx, request, final, config)
    if final.verdict is Verdict.DENY:
        return _denied(state, ctx, request, config)
    return state


def _granted(
    state: RulesState,
    ctx: StepContext,
    request: AccessRequest,
    decision: Decision,
    config: RulesConfig,
) -> RulesState:
    entry = request.direction is Direction.IN
    cycle = _cycle(state, ctx, request.door, config)
    cycle = anomalies.permit(cycle, request.at, request.event_id, entry)
    state = _with_cycle(state, request.door, cycle)
    passage = Passage(
        request.door, request.direction, request.at, decision.person_key, decision.unit_id,
        request.event_id,
    )  # fmt: skip
    return _pass(state, ctx, passage, config)


def _denied(
    state: RulesState, ctx: StepContext, request: AccessRequest, config: RulesConfig
) -> RulesState:
    key = credential_key(request)
    if key is None or request.event_id is None:
        return state
    window = timedelta(seconds=config.denial_window_s)
    recent = anomalies.denials_in_window(state.denials.get(key, ()), request.at, window)
    recent = (*recent, (request.at, request.event_id))
    return replace(state, denials={**state.denials, key: recent})


def credential_key(request: AccessRequest) -> str | None:
    """The key `repeated_denial` counts a denial under: one per distinct credential.

    It is the alert's key and goes upstream, so it never holds a card UID or an ID number:

    - a face: ``face:<occupant id>`` (the daemon gives every face credential the id 0);
    - a resident ID card: ``idcard:<short keyed hash of the number>``, known or not (the daemon
      resolves ID cards by the occupant's ID hash and gives them the credential id 0 too);
    - a registered IC card: ``credential:<credential id>``;
    - an unregistered card: ``card:<short keyed hash of the UID>``.
    """
    if request.kind is CredentialKind.FACE and request.occupant is not None:
        return f"face:{request.occupant.id}"
    if request.kind is CredentialKind.IDCARD and request.id_hash:
        return f"idcard:{short_hash(request.id_hash)}"
    if request.credential is not None:
        return f"credential:{request.credential.id}"
    if request.presented:
        return f"card:{short_hash(request.presented)}"
    if request.id_hash:
        return f"idcard:{short_hash(request.id_hash)}"
    return None


# --- camera, doors, devices ---------------------------------------------------------------------


def _on_face(
    state: RulesState, sighting: FaceSighting, ctx: StepContext, config: RulesConfig, site: Site
) -> RulesState:
    key: str | None = None
    unit: str | None = None
    if sighting.occupant_id is not None:
        key = f"occupant:{sighting.occupant_id}"
        occupant = site.occupants.get(sighting.occupant_id)
        unit = occupant.unit_id if occupant is not None else None
        state = _seen(state, ctx, sighting.occupant_id, sighting.at, sighting.id)
    elif sighting.cluster_id is not None:
        key = f"stranger:{sighting.cluster_id}"
        state = _stranger_seen(state, ctx, sighting, sighting.cluster_id, config)
    if sighting.direction is None:
        return state
    passage = Passage(sighting.door, sighting.direction, sighting.at, key, unit, sighting.id)
    return _pass(state, ctx, passage, config)


def _pass(state: RulesState, ctx: StepContext, passage: Passage, config: RulesConfig) -> RulesState:
    window = timedelta(seconds=config.companion_window_s)
    people, passage = occupancy.resolve(state.occupancy, passage, window)
    people = occupancy.pass_door(people, passage, window, config.night)
    state = replace(state, occupancy=people)
    if passage.direction is not Direction.IN:
        return state
    cycle = _cycle(state, ctx, passage.door, config)
    cycle = anomalies.enter(cycle, passage.at, passage.key, passage.event_id)
    if cycle.tailgating:
        counts = {"persons": len(cycle.persons), "grants": len(cycle.grants)}
        ctx.signal(AlertKind.TAILGATING, passage.door, True, counts, cycle.evidence)
    return _with_cycle(state, passage.door, cycle)


def _stranger_seen(
    state: RulesState, ctx: StepContext, sighting: FaceSighting, cluster: str, config: RulesConfig
) -> RulesState:
    days = anomalies.add_stranger_day(
        state.strangers.get(cluster, ()), sighting.at.date(), sighting.id
    )
    days = anomalies.stranger_days_in_window(days, ctx.now.date(), config.stranger_window_days)
    _signal_stranger(ctx, cluster, days, config)
    return replace(state, strangers={**state.strangers, cluster: days})


def _on_door(
    state: RulesState, event: DoorEvent, ctx: StepContext, config: RulesConfig
) -> RulesState:
    cycle = _cycle(state, ctx, event.door, config)
    if event.action is DoorAction.OPENED:
        window = timedelta(seconds=config.grant_window_s)
        cycle, forced = anomalies.opened(cycle, event.at, event.id, window)
        if forced:
            ctx.signal(AlertKind.DOOR_FORCED, event.door, True, {}, (event.id,))
    elif event.action is DoorAction.CLOSED:
        ctx.signal(AlertKind.DOOR_FORCED, event.door, False, {}, (event.id,))
        ctx.signal(AlertKind.DOOR_HELD, event.door, False, {}, (event.id,))
        ctx.signal(AlertKind.TAILGATING, event.door, False, {}, (event.id,))
        cycle = DoorCycle()
    else:
        entry = event.action is DoorAction.GRANT
        cycle = anomalies.permit(cycle, event.at, event.id, entry)
    return _with_cycle(state, event.door, cycle)


def _on_health(state: RulesState, event: DeviceHealth, ctx: StepContext) -> RulesState:
    known = state.devices.get(event.device)
    if event.ok or known is None:
        # The first report starts the clock even when it is a failure.
        state = replace(state, devices={**state.devices, event.device: (event.kind, event.at)})
    if event.ok:
        ctx.signal(_offline_kind(event.kind), event.device, False, {}, (event.id,))
    return state


def _offline_kind(kind: DeviceKind) -> AlertKind:
    return AlertKind.READER_OFFLINE if kind is DeviceKind.READER else AlertKind.CAMERA_OFFLINE


def _cycle(state: RulesState, ctx: StepContext, door: str, config: RulesConfig) -> DoorCycle:
    """The door's current cycle; a stale one ends first, so old grants never excuse new entries."""
    cycle = state.doors.get(door, DoorCycle())
    if anomalies.idle(cycle, ctx.now, timedelta(seconds=config.door_cycle_s)):
        ctx.signal(AlertKind.TAILGATING, door, False)
        return DoorCycle()
    return cycle


def _with_cycle(state: RulesState, door: str, cycle: DoorCycle) -> RulesState:
    return replace(state, doors={**state.doors, door: cycle})


def _seen(
    state: RulesState, ctx: StepContext, occupant_id: str, at: datetime, event_id: str | None
) -> RulesState:
    ctx.signal(AlertKind.VACANCY, occupant_id, False, {}, (event_id,) if event_id else ())
    return replace(state, seen_recent={**state.seen_recent, occupant_id: Sighting(at, event_id)})


# --- checks on every step -----------------------------------------------------------------------


def _fast_checks(
    state: RulesState, ctx: StepContext, config: RulesConfig, site: Site
) -> RulesState:
    window = timedelta(seconds=config.factor_window_s)
    access, timeouts = expire_pending(state.access, ctx.now, window)
    ctx.decisions.extend(timeouts)
    state = replace(state, access=access)
    state = _check_doors(state, ctx, config)
    state = _check_denials(state, ctx, config)
    _check_overcrowding(state, ctx, config, site)
    _check_building(state, ctx, config)
    return state


def _check_doors(state: RulesState, ctx: StepContext, config: RulesConfig) -> RulesState:
    held, idle = timedelta(seconds=config.door_held_s), timedelta(seconds=config.door_cycle_s)
    doors = dict(state.doors)
    for name, cycle in sorted(state.doors.items()):
        if anomalies.held_open(cycle, ctx.now, held):
            seconds = int((ctx.now - (cycle.open_since or ctx.now)).total_seconds())
            evidence = (cycle.opened_event,) if cycle.opened_event else ()
            ctx.signal(AlertKind.DOOR_HELD, name, True, {"open_s": seconds}, evidence)
        if anomalies.idle(cycle, ctx.now, idle):
            ctx.signal(AlertKind.TAILGATING, name, False)
            doors[name] = DoorCycle()
    return replace(state, doors=doors)


def _check_denials(state: RulesState, ctx: StepContext, config: RulesConfig) -> RulesState:
    window = timedelta(seconds=config.denial_window_s)
    kept: dict[str, tuple[tuple[datetime, str], ...]] = {}
    keys = sorted(set(state.denials) | set(ctx.episodes.keys(AlertKind.REPEATED_DENIAL)))
    for key in keys:
        recent = anomalies.denials_in_window(state.denials.get(key, ()), ctx.now, window)
        if recent:
            kept[key] = recent
        counts = {"denials": len(recent), "window_s": int(config.denial_window_s)}
        evidence = tuple(e for _, e in recent)
        ctx.signal(
            AlertKind.REPEATED_DENIAL, key, len(recent) >= config.denial_threshold, counts, evidence
        )
    return replace(state, denials=kept)


def _check_overcrowding(
    state: RulesState, ctx: StepContext, config: RulesConfig, site: Site
) -> None:
    night = config.night.contains(ctx.now)
    raised = {k for k in ctx.episodes.keys(AlertKind.OVERCROWDING) if not k.endswith(ROSTER)}
    if not night and not raised:
        return  # the condition is false for every unit and none is raised: no edge to report
    inside = state.occupancy.inside_counts(ctx.now)

    def condition(unit_id: str) -> bool:
        unit = site.units.get(unit_id)
        return night and unit is not None and inside.get(unit_id, 0) > unit.capacity

    # Only a unit whose condition differs from its episode yields an alert: build the counts
    # and evidence for those alone (this runs on every step, over every unit with someone in).
    edges = [
        u for u in set(inside) | raised
        if condition(u) != ctx.episodes.is_raised(AlertKind.OVERCROWDING, u)
    ]  # fmt: skip
    by_unit = state.occupancy.inside_by_unit(ctx.now) if edges else {}
    for unit_id in sorted(edges):
        unit = site.units.get(unit_id)
        persons = sorted(by_unit.get(unit_id, []), key=lambda kp: (kp[1].at, kp[0]))
        capacity = unit.capacity if unit is not None else len(persons)
        evidence = tuple(p.event_id for _, p in persons if p.event_id is not None)
        counts = {"inside": len(persons), "capacity": capacity}
        ctx.signal(AlertKind.OVERCROWDING, unit_id, condition(unit_id), counts, evidence)


def _check_building(state: RulesState, ctx: StepContext, config: RulesConfig) -> None:
    if config.building_limit is None:
        return
    people = state.occupancy
    counts = {
        "headcount": people.headcount,
        "limit": config.building_limit,
        "unknown": people.anonymous_inside,
    }
    condition = people.headcount > config.building_limit
    ctx.signal(AlertKind.BUILDING_OVER_CAPACITY, "building", condition, counts)


# --- checks on ticks ----------------------------------------------------------------------------


def _tick_checks(
    state: RulesState, ctx: StepContext, config: RulesConfig, site: Site
) -> RulesState:
    state = _check_strangers(state, ctx, config)
    _check_devices(state, ctx, config)
    last = state.roster_checked
    if last is None or ctx.now - last >= timedelta(seconds=config.roster_check_s):
        state = _check_vacancy(state, ctx, config, site)
        _check_tenancy(ctx, config, site)
        _check_approvals(ctx, config, site)
        _check_roster_capacity(ctx, site)
    return state


def _signal_stranger(
    ctx: StepContext, cluster: str, days: tuple[tuple[date, str], ...], config: RulesConfig
) -> None:
    counts = {"days": len(days), "window_days": config.stranger_window_days}
    condition = len(days) >= config.stranger_days
    ctx.signal(AlertKind.STRANGER_RECURRING, cluster, condition, counts, tuple(e for _, e in days))


def _check_strangers(state: RulesState, ctx: StepContext, config: RulesConfig) -> RulesState:
    kept: dict[str, tuple[tuple[date, str], ...]] = {}
    raised = ctx.episodes.keys(AlertKind.STRANGER_RECURRING)
    for cluster in sorted(set(state.strangers) | set(raised)):
        days = anomalies.stranger_days_in_window(
            state.strangers.get(cluster, ()), ctx.now.date(), config.stranger_window_days
        )
        if days:
            kept[cluster] = days  # retention: a cluster's days leave with the window
        _signal_stranger(ctx, cluster, days, config)
    return replace(state, strangers=kept)


def _check_vacancy(
    state: RulesState, ctx: StepContext, config: RulesConfig, site: Site
) -> RulesState:
    last_seen = {**state.last_seen, **state.seen_recent}
    for occupant_id in sorted(set(site.occupants) | set(ctx.episodes.keys(AlertKind.VACANCY))):
        occupant = site.occupants.get(occupant_id)
        if occupant is None or occupant.status is not OccupantStatus.APPROVED:
            ctx.signal(AlertKind.VACANCY, occupant_id, False)
            continue
        # Never seen since the rules first knew them: start the clock now, not at valid_from, or
        # a fresh gateway would report every long-standing tenant as vacant on its first tick.
        seen = last_seen.setdefault(occupant_id, Sighting(ctx.now))
        start = datetime.combine(occupant.valid_from, time(0), ctx.now.tzinfo)
        since = max(seen.at, start)
        limit = occupant.welfare_days if occupant.welfare_days is not None else config.vacancy_days
        counts = {"days_unseen": (ctx.now - since).days, "threshold_days": limit}
        evidence = (seen.event_id,) if seen.event_id else ()
        vacant = ctx.now - since > timedelta(days=limit)
        ctx.signal(AlertKind.VACANCY, occupant_id, vacant, counts, evidence)
    return replace(state, last_seen=last_seen, seen_recent={}, roster_checked=ctx.now)


def _check_tenancy(ctx: StepContext, config: RulesConfig, site: Site) -> None:
    keys = set(site.occupants) | set(ctx.episodes.keys(AlertKind.TENANCY_EXPIRING))
    for occupant_id in sorted(keys):
        occupant = site.occupants.get(occupant_id)
        condition, counts = False, {}
        if occupant and occupant.status is OccupantStatus.APPROVED and occupant.valid_to:
            days_left = (occupant.valid_to - ctx.now.date()).days
            counts = {"days_left": days_left}
            condition = 0 <= days_left <= config.tenancy_notice_days
        ctx.signal(AlertKind.TENANCY_EXPIRING, occupant_id, condition, counts)


def _check_approvals(ctx: StepContext, config: RulesConfig, site: Site) -> None:
    keys = set(site.occupants) | set(ctx.episodes.keys(AlertKind.APPROVAL_OVERDUE))
    for occupant_id in sorted(keys):
        occupant = site.occupants.get(occupant_id)
        condition = False
        if occupant and occupant.status is OccupantStatus.PENDING and occupant.submitted_at:
            due = add_working_days(
                occupant.submitted_at, config.approval_working_days, config.holidays
            )
            condition = ctx.now > due
        counts = {"working_days": config.approval_working_days}
        ctx.signal(AlertKind.APPROVAL_OVERDUE, occupant_id, condition, counts)


def _check_roster_capacity(ctx: StepContext, site: Site) -> None:
    """Overcrowding on paper: more approved occupants in their tenancy than the unit's capacity.

    Keyed ``<unit>:approved`` so that it is an episode of its own, apart from the night count.
    """
    approved: dict[str, int] = {}
    today = ctx.now.date()
    for occupant in site.occupants.values():
        if occupant.status is OccupantStatus.APPROVED and not tenancy_reasons(occupant, today):
            approved[occupant.unit_id] = approved.get(occupant.unit_id, 0) + 1
    keys = ctx.episodes.keys(AlertKind.OVERCROWDING)
    raised = {k.removesuffix(ROSTER) for k in keys if k.endswith(ROSTER)}
    for unit_id in sorted(set(approved) | raised):
        unit = site.units.get(unit_id)
        count = approved.get(unit_id, 0)
        condition = unit is not None and count > unit.capacity
        counts = {"approved": count, "capacity": unit.capacity if unit else 0}
        ctx.signal(AlertKind.OVERCROWDING, unit_id + ROSTER, condition, counts)


def _check_devices(state: RulesState, ctx: StepContext, config: RulesConfig) -> None:
    after = timedelta(seconds=config.offline_after_s)
    for device, (kind, last_ok) in sorted(state.devices.items()):
        silent = int((ctx.now - last_ok).total_seconds())
        condition = device_offline(last_ok, ctx.now, after)
        ctx.signal(_offline_kind(kind), device, condition, {"silent_s": silent})
