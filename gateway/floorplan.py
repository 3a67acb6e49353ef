"""The retained ``units`` topic: the station's floor plan, recomputed when something changed.

`rules.colour` gives each unit its colour from the rules state; this module decides when to
recompute (a cheap fingerprint of what the colours depend on) and hands the payload to the
uplink, which publishes it retained. At 100,000 occupants a pass takes tens of milliseconds, so
it runs in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime
from typing import Any

from rules.colour import UnitStatus, site_status
from rules.engine import RulesState, Site
from sync.contract import Topics, dumps, units_payload
from sync.uplink import Uplink


def unit_rows(statuses: Iterable[UnitStatus], site: Site) -> list[dict[str, Any]]:
    """The ``units`` payload rows: place, capacity, counts, colour and reasons."""
    rows = []
    for status in statuses:
        unit = site.units[status.unit]
        row = asdict(status)
        row.update(
            colour=status.colour.value,
            reasons=list(status.reasons),
            building=unit.building,
            floor=unit.floor,
            room=unit.room,
        )
        rows.append(row)
    return rows


class FloorPlan:
    """Publishes the floor plan when the site, the alerts or who is inside changed.

    Args:
        topics: the gateway's topics.
        doors: every door of the gateway (a forced one turns its units red).
    """

    def __init__(self, topics: Topics, doors: Iterable[str]) -> None:
        self.topics = topics
        self.doors = tuple(doors)
        self._fingerprint: tuple[object, ...] | None = None
        self.published = 0

    def fingerprint(self, state: RulesState, site: Site, now: datetime) -> tuple[object, ...]:
        """What the colours depend on; the hour covers attributions that end with the night."""
        occupancy = state.occupancy
        inside = frozenset((k, p.unit_at(now)) for k, p in occupancy.persons.items()
                           if p.side.value == "inside")
        return (id(site), state.episodes.active, inside, now.date(), now.hour)

    async def update(self, state: RulesState, site: Site, now: datetime, uplink: Uplink) -> bool:
        """Recompute and hand to the uplink if anything changed; True when it did."""
        fingerprint = self.fingerprint(state, site, now)
        if fingerprint == self._fingerprint:
            return False
        self._fingerprint = fingerprint

        def build() -> str:
            statuses = site_status(
                site.units, site.occupants.values(), state.occupancy, state.episodes, now,
                doors=self.doors,
            )
            return dumps(units_payload(unit_rows(statuses, site), self.topics))

        uplink.set_retained(self.topics.units, await asyncio.to_thread(build))
        self.published += 1
        return True
