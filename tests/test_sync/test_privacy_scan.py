"""Scanner: no payload the gateway can publish carries a raw ID number, card UID, name, face image
or template — checked on every payload builder with random people and cards."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.floorplan import unit_rows
from rules.alerts import Episodes
from rules.colour import site_status
from rules.engine import Site
from rules.identity import check_character, mask_uid
from rules.model import CredentialKind, Unit
from rules.occupancy import OccupancyState
from sync.commands import Reply, reply_payload
from sync.contract import (
    AccessRecord,
    Topics,
    access_payload,
    alert_payload,
    door_payload,
    dumps,
    new_event_id,
    units_payload,
)
from sync.faces import add_template
from sync.store import Store

TOPICS = Topics("privacy", "gw")
HEX_BLOB = re.compile(r"[0-9a-fA-F]{40,}")
B64_BLOB = re.compile(r"[A-Za-z0-9+/]{60,}={0,2}")


def id_numbers() -> st.SearchStrategy[str]:
    def build(region: int, day: date, serial: int) -> str:
        first17 = f"{region:06d}{day:%Y%m%d}{serial:03d}"
        return first17 + check_character(first17)

    return st.builds(build, st.integers(110000, 659999),
                     st.dates(date(1930, 1, 1), date(2010, 12, 31)), st.integers(0, 999))


def assert_clean(payloads: list[str], secrets: list[str], template: np.ndarray) -> None:
    text = "\n".join(payloads)
    for secret in secrets:
        assert secret.lower() not in text.lower(), secret
    assert not HEX_BLOB.search(text)
    assert not B64_BLOB.search(text)
    assert base64.b64encode(template.tobytes()[:48]).decode()[:32] not in text
    assert "\\u00ff\\u00d8" not in text and "ÿØ" not in text  # no JPEG start-of-image


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(number=id_numbers(), uid=st.binary(min_size=4, max_size=10),
       name=st.text(alphabet="张王李赵钱孙周吴郑冯陈褚卫蒋沈韩杨朱秦尤许何吕施", min_size=2, max_size=4))
def test_no_builder_leaks_identifiers(tmp_path_factory, number: str, uid: bytes, name: str) -> None:
    folder = tmp_path_factory.mktemp("scan")
    store = Store.open(folder / "g.db", b"k" * 32, TOPICS)
    store.add_unit(Unit("A-101", "A", 1, "101", 3))
    occupant = store.add_occupant("A-101", name, number, date(2026, 1, 1), None)
    store.add_card(occupant.id, CredentialKind.IC, uid.hex())
    template = np.random.default_rng(1).normal(size=128).astype(np.float32)
    add_template(store.db, occupant.id, template, "photo.jpg", 0.9)
    now = datetime.now(UTC)
    record = AccessRecord(new_event_id(), now, "main", "in", "ic", occupant.id, "A-101",
                          mask_uid(uid.hex()), "allow", ("granted",))
    payloads = [
        dumps(access_payload(record, TOPICS)),
        dumps(alert_payload("overcrowding", "A-101", "raised", TOPICS, unit="A-101",
                            counts={"inside": 4, "capacity": 3}, evidence=(record.id,))),
        dumps(door_payload("main", "opened", TOPICS)),
        dumps(reply_payload(TOPICS, "c1", "resync", Reply("applied", "", {"occupants": store.snapshot()}), now)),
        *(row.payload for row in store.outbox_batch(100)),  # the enrolment request
    ]
    assert len(payloads) == 5
    # The floor plan and the status changes made here (local approval, move-out).
    site = Site(units={"A-101": store.get_unit("A-101")}, occupants={occupant.id: occupant})
    statuses = site_status(site.units, site.occupants.values(), OccupancyState(), Episodes(), now)
    payloads.append(dumps(units_payload(unit_rows(statuses, site), TOPICS)))
    before = {row.seq for row in store.outbox_batch(100)}
    store.approve(occupant.id, by="li")
    store.move_out(occupant.id)
    changes = [row.payload for row in store.outbox_batch(100) if row.seq not in before]
    assert [json.loads(c)["status"] for c in changes] == ["approved", "moved_out"]
    payloads += changes
    secrets = [number, number[6:14], uid.hex(), name if len(name) > 1 else "\x00"]
    secrets += [name[1:]] if len(name) > 2 else []
    assert_clean(payloads, secrets, template)
    for text in payloads:
        json.loads(text)
    store.close()
    for path in Path(folder).glob("g.db*"):
        assert number.encode() not in path.read_bytes()
