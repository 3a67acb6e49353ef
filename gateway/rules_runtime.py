"""The rules engine inside the daemon: reference data from the store, state persisted as JSON.

`rules.engine.step` is pure; this class owns what it needs around it: the `Site` (units and
occupants, reloaded after changes), the `RulesState` (saved to ``sync_state`` periodically and
at shutdown) and the `RulesConfig` built from the config file plus the station's overrides.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from gateway.config import DoorConfig, GatewayConfig
from rules.access import DoorMode, DoorPolicy
from rules.alerts import CapacityPolicy
from rules.engine import RulesConfig, RulesState, Site, step
from rules.events import Event, Tick
from rules.outcome import Outcome
from rules.timewindows import NightWindow, Schedule, parse_clock
from sync.errors import StoreError
from sync.portal_store import PortalStore, load_passes
from sync.store import AsyncStore

logger = logging.getLogger(__name__)
STATE_KEY = "rules_state"
OVERRIDES_KEY = "rules_config"


def door_policy(door: DoorConfig) -> DoorPolicy:
    """The rules' view of a configured door."""
    return DoorPolicy(DoorMode(door.mode), Schedule.parse(door.schedule), door.anti_passback)


def _number(value: object) -> bool:
    # bool is an int subclass: True would pass as 1 (a denial threshold of one, a 1 s window).
    return isinstance(value, int | float) and not isinstance(value, bool)


#: The thresholds a ``rules_config`` override may set: the numbers of `RulesConfig`.
OVERRIDABLE = frozenset(
    f.name
    for f in dataclasses.fields(RulesConfig)
    if _number(getattr(RulesConfig(), f.name)) or f.name == "building_limit"
)


def override_errors(overrides: dict[str, Any]) -> list[str]:
    """Why a ``rules_config`` override must be refused: a threshold given as true/false.

    Unknown keys and other non-numbers are still only ignored (and logged) by `rules_config`.
    """
    return [
        f"config.{key}: expected a number, got the boolean {json.dumps(value)}"
        for key, value in sorted(overrides.items())
        if key in OVERRIDABLE and isinstance(value, bool)
    ]


def rules_config(config: GatewayConfig, overrides: dict[str, Any] | None = None) -> RulesConfig:
    """Thresholds from the ``[rules]`` section, door policies from ``[[doors]]``, then overrides.

    Overrides come from the station's signed ``rules_config`` command; only numeric thresholds
    that `RulesConfig` knows are applied (never a boolean, though Python counts it as an int),
    anything else is logged and ignored.
    """
    section = config.rules
    base = RulesConfig(
        doors={d.name: door_policy(d) for d in config.doors},
        night=NightWindow(parse_clock(section.night_start), parse_clock(section.night_end)),
        door_held_s=section.door_held_s,
        vacancy_days=section.vacancy_days,
        stranger_days=section.stranger_days,
        stranger_window_days=section.stranger_window_days,
        building_limit=section.building_limit,
        capacity_policy=CapacityPolicy(config.station.capacity_policy),
    )
    accepted: dict[str, Any] = {
        k: v for k, v in (overrides or {}).items() if k in OVERRIDABLE and _number(v)
    }
    if ignored := set(overrides or {}) - set(accepted):
        logger.warning("rules config: ignored unknown or non-numeric keys %s", sorted(ignored))
    return dataclasses.replace(base, **accepted)


class RulesRuntime:
    """State, config and site of the rules for one gateway.

    Args:
        config: the gateway configuration.
        store: the gateway store.
    """

    def __init__(self, config: GatewayConfig, store: AsyncStore) -> None:
        self.gateway_config = config
        self.store = store
        self.config = rules_config(config)
        self.state = RulesState()
        self.site = Site()
        self._lock = asyncio.Lock()
        self._uses_written: dict[str, int] = {}  # pass uses as last written to the pass rows

    async def load(self) -> None:
        """Read the site and the last saved state (a corrupt state starts afresh, logged)."""
        await self.reload_site()
        raw_state = await self.store.run(self.store.store.get_state, STATE_KEY)
        if raw_state:
            try:
                self.state = RulesState.from_dict(json.loads(raw_state))
            except ValueError as err:
                logger.warning("rules state unreadable (%s); starting with an empty state", err)
        overrides = await self.store.run(self.store.store.get_state, OVERRIDES_KEY)
        if overrides:
            self.config = rules_config(self.gateway_config, json.loads(overrides)["config"])

    async def reload_site(self) -> None:
        """Re-read units, occupants and visitor passes after enrolments or station commands.

        The entries made with each visitor pass (counted by the rules state) are written back to
        the pass rows on the way, for the portal to show: only the counts that changed since the
        last write (the state keeps every pass's count, used up or long expired).
        """
        store = self.store.store
        now = datetime.now(ZoneInfo(self.gateway_config.site.timezone))
        uses = dict(self.state.access.pass_uses)
        written = self._uses_written
        changed = {k: n for k, n in uses.items() if written.get(k) != n}

        def read() -> Site:
            units = {u["id"]: store.get_unit(u["id"]) for u in store.list_units()}
            occupants = {o.id: o for o in store.list_occupants()}
            PortalStore(store.db).set_pass_uses(changed)
            passes = load_passes(store.db, now)
            return Site(units=units, occupants=occupants, passes=passes)

        self.site = await self.store.run(read)
        self._uses_written = uses

    def step(self, event: Event, now: datetime) -> Outcome:
        """Advance the rules by one event (pure computation, microseconds)."""
        self.state, outcome = step(self.state, event, now, self.config, self.site)
        return outcome

    async def advance(self, event: Event, now: datetime) -> Outcome:
        """`step`, serialised; a tick runs in a worker thread.

        A tick's roster pass over every occupant takes ≈ 0.7 s at 100,000 occupants; in a
        thread it no longer stalls the event loop (uplink, other readers, the watchdog). A card
        decision arriving meanwhile waits for the lock, so state updates stay in order.
        """
        async with self._lock:
            if isinstance(event, Tick):
                return await asyncio.to_thread(self.step, event, now)
            return self.step(event, now)

    async def save(self) -> None:
        """Persist the state so a restart keeps occupancy, episodes and door cycles."""
        text = json.dumps(self.state.to_dict(), ensure_ascii=False)
        try:
            await self.store.run(self.store.store.set_state, STATE_KEY, text)
        except StoreError as err:
            # Losing the snapshot costs only counters since the last save; never crash for it.
            logger.warning("rules state not saved: %s", err)
