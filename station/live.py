"""`doorgate station`: the consumer with a live table in the terminal."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.table import Table

from rules.i18n import t
from station.consumer import StationConsumer
from station.store import StationStore
from sync.mqtt import BrokerSettings


def render(store: StationStore) -> Group:
    """The gateways' states and the newest events as two tables."""
    gateways = Table(title=t("station.gateways"))
    for key in ("col.gateway", "col.state", "col.time"):
        gateways.add_column(t(key))
    for g in store.gateways():
        colour = "green" if g["state"] == "online" else "red"
        gateways.add_row(
            f"{g['site']}/{g['gateway']}", f"[{colour}]{t('state.' + g['state'])}[/]", g["ts"]
        )
    events = Table(title=t("station.title"))
    for key in (
        "col.time",
        "col.gateway",
        "col.card",
        "col.person",
        "col.unit",
        "col.decision",
        "col.reasons",
    ):
        events.add_column(t(key))
    for e in store.recent_events(15):
        events.add_row(*_event_cells(e))
    return Group(gateways, events)


def _event_cells(e: dict[str, Any]) -> list[str]:
    decision = e.get("decision", "")
    colour = "green" if decision == "allow" else "red"
    return [
        e["ts"][11:19],
        e["gateway"],
        e.get("credential", {}).get("masked", ""),
        e.get("occupant") or "-",
        e.get("unit") or "-",
        f"[{colour}]{t(decision)}[/]",
        "、".join(t(r) for r in e.get("reasons", [])),
    ]


async def run_station(
    broker_url: str, db: str | Path, *, share_group: str | None, client_id: str
) -> None:
    """Consume until interrupted, redrawing the table as events arrive."""
    store = StationStore(db)
    changed = asyncio.Event()
    consumer = StationConsumer(
        store,
        BrokerSettings.from_url(broker_url, client_id),
        share_group=share_group,
        on_event=lambda *_: changed.set(),
    )
    try:
        with Live(render(store), auto_refresh=False) as live:
            task = asyncio.create_task(consumer.run(), name="station-consumer")
            while not task.done():
                await changed.wait()
                changed.clear()
                live.update(render(store), refresh=True)
    finally:
        store.close()
