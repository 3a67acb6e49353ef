"""The station store, the same tests on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from station.store import StationStore


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StationStore]:
    target = tmp_path / "station.db" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    s = StationStore(target)
    assert s.db.kind == request.param
    yield s
    s.close()


def envelope(event_id: str, **extra: object) -> dict[str, object]:
    return {"schema": "x/1", "id": event_id, "ts": f"2026-11-22T10:00:0{len(event_id) % 10}.000Z",
            "site": "s1", "gateway": "g1", **extra}


def test_events_are_stored_once(store: StationStore) -> None:
    assert store.add_event("t", "event/access", envelope("e1", decision="allow"))
    assert not store.add_event("t", "event/access", envelope("e1", decision="allow"))
    assert store.add_event("t", "event/access", envelope("e22"))
    assert store.event_ids() == {"e1", "e22"}
    assert store.duplicates == 1
    assert [e["id"] for e in store.recent_events()] == ["e22", "e1"]


def test_gateway_status_is_upserted(store: StationStore) -> None:
    store.set_status(envelope("s1", state="online"))
    store.set_status(envelope("s2", state="offline"))
    (gateway,) = store.gateways()
    assert gateway["state"] == "offline"
    assert json.loads(gateway["payload"])["id"] == "s2"


def test_alerts_are_acknowledged_once(store: StationStore) -> None:
    store.add_alert(envelope("a-123", kind="overcrowding", key="A-101", state="raised", unit="A-101"))
    store.add_alert(envelope("a-456", kind="door_forced", key="main", state="cleared"))
    assert [a["id"] for a in store.open_alerts()] == ["a-123"]
    assert not store.ack_alert("a-1", by="officer")  # too short to be a prefix
    assert store.ack_alert("a-123", by="officer")
    assert not store.ack_alert("a-123", by="officer")
    assert not store.ack_alert("%", by="officer")  # no wildcard acknowledgement
    assert store.open_alerts() == []


def test_enrolments_versions_and_decisions(store: StationStore) -> None:
    request = envelope("r1", occupant="o1", unit="A-101", name_masked="王*",
                       id_masked="440524********0014", valid_from="2026-01-01", valid_to=None)
    store.add_enrolment(request)
    store.add_enrolment(request)  # re-sent: still one
    assert [e["occupant"] for e in store.enrolments()] == ["o1"]
    assert [store.next_command_version("s1", "g1", "o1") for _ in range(3)] == [1, 2, 3]
    store.decide_enrolment("s1", "g1", "o1", "approved", by="officer")
    assert store.enrolments() == []
    assert store.enrolments(None)[0]["decided_by"] == "officer"
    # A command about someone whose request has not arrived yet does not list a phantom.
    assert store.next_command_version("s1", "g1", "o2") == 1
    assert [e["occupant"] for e in store.enrolments("pending")] == []


def test_replies_are_kept_by_command(store: StationStore) -> None:
    store.add_reply(envelope("x", command_id="c1", command="unlock", ok=False, code="expired", message="m"))
    store.add_reply(envelope("y", command_id="c1", command="unlock", ok=True, code="applied", message=""))
    store.add_reply(envelope("z", command_id=None, command=None, ok=False, code="malformed", message=""))
    reply = store.reply("c1")
    assert reply is not None
    assert (reply["ok"], reply["code"]) == (1, "applied")
    assert store.reply("nope") is None
