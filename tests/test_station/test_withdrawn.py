"""Status changes made at the gateway reach the station; the floor plan stays true.

Withdrawn enrolments leave the queue, local approvals are recorded, departures (走注销) too.

The gateway's outbox rows are handed to the station consumer as the broker would deliver them
(topic and payload bytes), so the whole path below the broker runs for real.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import jsonschema

from rules.model import Unit
from station.consumer import StationConsumer
from station.store import StationStore
from station.web.store import WebStore
from sync.contract import Topics, dumps, load_schema, rfc3339, units_payload
from sync.mqtt import BrokerSettings
from sync.store import Store

KEY = b"k" * 32
TOPICS = Topics("xh-01", "bldg-3")


def deliver(store: Store, consumer: StationConsumer) -> list[str]:
    """Hand every outbox row to the station, as the uplink and broker would; return topics."""
    rows = store.outbox_batch(1000)
    for row in rows:
        consumer.handle(f"{TOPICS.root}/{row.topic}", row.payload.encode())
    store.outbox_delete([r.seq for r in rows])
    return [r.topic for r in rows]


def setup(tmp_path: Path) -> tuple[Store, StationStore, StationConsumer]:
    store = Store.open(tmp_path / "gw.db", KEY, TOPICS)
    store.add_unit(Unit("A-101", "A", 1, "101", 2))
    station = StationStore(tmp_path / "station.db")
    consumer = StationConsumer(station, BrokerSettings.from_url("mqtt://127.0.0.1:1", "t"))
    return store, station, consumer


def test_a_sent_enrolment_is_withdrawn_when_the_landlord_rejects_or_moves_out(
    tmp_path: Path,
) -> None:
    store, station, consumer = setup(tmp_path)
    a = store.add_occupant("A-101", "王芳", "440524188001010014", date(2026, 1, 1), None)
    b = store.add_occupant("A-101", "李娜", "320102199003071239", date(2026, 1, 1), None)
    assert deliver(store, consumer) == ["enrolment/request", "enrolment/request"]
    assert {e["occupant"] for e in station.enrolments()} == {a.id, b.id}

    store.reject_declaration(a.id)
    store.move_out(b.id)
    rows = store.outbox_batch(10)
    validator = jsonschema.Draft202012Validator(load_schema("occupant_status"))
    for row in rows:
        validator.validate(json.loads(row.payload))
        assert "王" not in row.payload and "440524" not in row.payload
    assert deliver(store, consumer) == ["occupant/status", "occupant/status"]
    assert station.enrolments() == []
    reasons = {e["occupant"]: (e["status"], e["reason"]) for e in station.enrolments(None)}
    assert reasons == {
        a.id: ("withdrawn", "rejected_by_landlord"), b.id: ("withdrawn", "moved_out")
    }


def test_an_unsent_request_is_dropped_instead(tmp_path: Path) -> None:
    store, station, consumer = setup(tmp_path)
    a = store.add_occupant("A-101", "王芳", "440524188001010014", date(2026, 1, 1), None)
    store.reject_declaration(a.id)
    assert store.outbox_batch(10) == []  # nothing for the station to forget
    assert deliver(store, consumer) == [] and station.enrolments(None) == []


def test_a_decided_enrolment_is_not_reopened_by_a_late_withdrawal(tmp_path: Path) -> None:
    store, station, consumer = setup(tmp_path)
    a = store.add_occupant("A-101", "王芳", "440524188001010014", date(2026, 1, 1), None)
    deliver(store, consumer)
    station.decide_enrolment(TOPICS.site, TOPICS.gateway, a.id, "approved", by="officer")
    store.move_out(a.id)
    deliver(store, consumer)
    assert station.enrolments(None)[0]["status"] == "approved"


def plan(pending: int, registered: int, at: datetime) -> bytes:
    row = {"unit": "A-101", "building": "A", "floor": 1, "room": "101", "capacity": 2,
           "registered": registered, "pending": pending, "inside": 0,
           "colour": "yellow" if pending else "green",
           "reasons": [f"pending:{pending}"] if pending else []}
    payload = units_payload([row], TOPICS)
    payload["ts"] = rfc3339(at)
    return dumps(payload).encode()


def test_the_floor_plan_applies_what_the_station_saw_after_the_snapshot(tmp_path: Path) -> None:
    store, station, consumer = setup(tmp_path)
    web = WebStore(station)
    old = datetime.now(UTC) - timedelta(minutes=1)
    consumer.handle(f"{TOPICS.root}/units", plan(0, 0, old))
    a = store.add_occupant("A-101", "王芳", "440524188001010014", date(2026, 1, 1), None)
    deliver(store, consumer)  # the request arrived after the snapshot
    cell = web.units(TOPICS.site, TOPICS.gateway)[0]
    assert (cell["pending"], cell["colour"]) == (1, "yellow")

    consumer.handle(f"{TOPICS.root}/units", plan(1, 0, datetime.now(UTC)))
    assert web.units(TOPICS.site, TOPICS.gateway)[0]["pending"] == 1  # not counted twice
    station.decide_enrolment(TOPICS.site, TOPICS.gateway, a.id, "approved", by="officer")
    cell = web.units(TOPICS.site, TOPICS.gateway)[0]
    assert (cell["pending"], cell["registered"], cell["colour"]) == (0, 1, "green")
    # The gateway's next snapshot includes the approval: still one, not two.
    consumer.handle(f"{TOPICS.root}/units", plan(0, 1, datetime.now(UTC) + timedelta(seconds=1)))
    cell = web.units(TOPICS.site, TOPICS.gateway)[0]
    assert (cell["pending"], cell["registered"], cell["colour"]) == (0, 1, "green")


def test_a_decision_recorded_after_the_snapshot_that_includes_it_counts_once(
    tmp_path: Path,
) -> None:
    # The station records an approval when the gateway's reply arrives; by then the gateway has
    # applied it and may have published a snapshot that counts the tenant already.
    store, station, consumer = setup(tmp_path)
    web = WebStore(station)
    a = store.add_occupant("A-101", "王芳", "440524188001010014", date(2026, 1, 1), None)
    deliver(store, consumer)
    issued = datetime.now(UTC)
    consumer.handle(f"{TOPICS.root}/units", plan(0, 1, issued + timedelta(milliseconds=50)))
    station.decide_enrolment(TOPICS.site, TOPICS.gateway, a.id, "approved", by="officer",
                             at=issued.isoformat())
    cell = web.units(TOPICS.site, TOPICS.gateway)[0]
    assert (cell["pending"], cell["registered"], cell["colour"]) == (0, 1, "green")


def test_local_approval_and_departure_reach_the_station(tmp_path: Path) -> None:
    store, station, consumer = setup(tmp_path)
    a = store.add_occupant("A-101", "王芳", "440524188001010014", date(2026, 1, 1), None)
    deliver(store, consumer)
    store.approve(a.id, by="li")
    assert deliver(store, consumer) == ["occupant/status"]
    record = station.enrolments(None)[0]
    assert (record["status"], record["decided_by"]) == ("approved", "gateway:li")
    assert station.enrolments() == []  # out of the approval queue
    store.move_out(a.id)
    assert deliver(store, consumer) == ["occupant/status"]
    assert station.enrolments(None)[0]["status"] == "moved_out"
