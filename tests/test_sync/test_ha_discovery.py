"""Home Assistant discovery payloads: shape, required keys, templates, privacy, removal.

The templates are rendered with Jinja's immutable sandbox (what HA uses) against payloads built
by the contract's own builders, with HA's ``to_json`` filter, so a template that would leave an
entity stuck or wrong in HA fails here.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from rules.alerts import AlertKind
from sync.contract import Topics, alert_payload, door_payload, dumps
from sync.ha_discovery import (
    DOOR_ACTIONS,
    HaDevice,
    component_discovery,
    components,
    device_discovery,
    discovery_messages,
    removal_messages,
    slug,
)

A = Topics("s1", "gA")
DEVICE = HaDevice(A, doors=["main", "正门", 'Gate "2"'], readers=["entrance"], sw_version="0.1.0")
# HA's discovery topic matcher (homeassistant/components/mqtt/discovery.py), after the prefix.
HA_TOPIC = re.compile(
    r"^homeassistant/(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?"
    r"(?P<object_id>[a-zA-Z0-9_-]+)/config$"
)
# What HA requires per platform (voluptuous schemas of the MQTT platforms), plus what we
# require of every entity: a stable unique id, availability from the status topic, a name.
REQUIRED = {
    "binary_sensor": {"state_topic"},
    "sensor": {"state_topic"},
    "event": {"state_topic", "event_types"},
}
COMMON = {"unique_id", "availability", "name"}
# The only payload fields templates may read: no occupant, credential, name or ID number.
ALLOWED_FIELDS = {"door", "action", "state", "key", "unit", "message", "readers", "headcount"}

env = ImmutableSandboxedEnvironment()
env.filters["to_json"] = lambda value: json.dumps(value, ensure_ascii=False)


def render(template: str, payload: dict[str, Any]) -> str:
    """Render as HA does: the payload text as ``value``, its JSON as ``value_json``."""
    text = dumps(payload)
    return env.from_string(template).render(value=text, value_json=json.loads(text))


def entity(object_id: str) -> dict[str, Any]:
    return components(DEVICE)[object_id]


def test_device_discovery_is_one_retained_message_on_the_acl_topic() -> None:
    [(topic, payload)] = device_discovery(DEVICE)
    assert topic == "homeassistant/device/s1/gA/config"  # = homeassistant/device/%u/config
    assert HA_TOPIC.match(topic)
    body = json.loads(payload)
    assert body["device"]["identifiers"] == ["doorgate_s1_gA"]
    assert body["device"]["sw_version"] == "0.1.0"
    assert body["origin"]["name"] == "doorgate"  # HA requires an origin for device discovery
    kinds = len(list(AlertKind))
    assert len(body["components"]) == 2 * 3 + 1 + 1 + kinds
    assert discovery_messages(DEVICE) == device_discovery(DEVICE)


@pytest.mark.parametrize("per_component", [False, True])
def test_every_entity_has_what_ha_requires(per_component: bool) -> None:
    messages = discovery_messages(DEVICE, per_component=per_component)
    if per_component:
        entities = []
        for topic, payload in messages:
            match = HA_TOPIC.match(topic)
            assert match, topic
            assert match["node_id"] == "doorgate_s1_gA"
            entities.append((match["component"], json.loads(payload)))
        assert all(body["device"]["identifiers"] == ["doorgate_s1_gA"] for _, body in entities)
    else:
        [(_, payload)] = messages
        entities = [(c.pop("platform"), c) for c in json.loads(payload)["components"].values()]
    assert {platform for platform, _ in entities} == set(REQUIRED)
    unique_ids = [body["unique_id"] for _, body in entities]
    assert len(set(unique_ids)) == len(unique_ids)
    assert all(uid.startswith("doorgate_s1_gA_") for uid in unique_ids)
    for platform, body in entities:
        missing = (REQUIRED[platform] | COMMON) - body.keys()
        assert not missing, (platform, body["unique_id"], missing)
        assert body["state_topic"].startswith("doorgate/v1/s1/gA/")
        [availability] = body["availability"]
        assert availability["topic"] == A.status
        assert availability["payload_available"] == "online"
        assert availability["payload_not_available"] == "offline"
        status = {"state": "online", "readers": {}}
        assert render(availability["value_template"], status) == "online"
        # Nothing HA could use to command the gateway: commands must be station-signed.
        assert not [k for k in body if k.endswith("command_topic")]
        assert platform != "lock"


def test_unique_ids_are_stable_and_distinct_between_gateways() -> None:
    again = HaDevice(A, doors=["main", "正门", 'Gate "2"'], readers=["entrance"])
    other = HaDevice(Topics("s1", "gB"), doors=["main"])
    ids = {c["unique_id"] for c in components(DEVICE).values()}
    assert ids == {c["unique_id"] for c in components(again).values()}
    assert not ids & {c["unique_id"] for c in components(other).values()}


@pytest.mark.parametrize(
    ("door", "action", "expected"),
    [
        ("main", "opened", "ON"),
        ("main", "forced", "ON"),
        ("main", "held_open", "ON"),
        ("main", "closed", "OFF"),
        ("main", "exit_request", ""),  # not a contact state: HA ignores empty output
        ("main", "remote_unlock", ""),
        ("back", "opened", ""),  # another door's event leaves this one alone
        ("正门", "opened", "ON"),
        ('Gate "2"', "closed", "OFF"),
    ],
)
def test_door_contact_follows_its_own_door_only(door: str, action: str, expected: str) -> None:
    payload = door_payload(door, action, A)
    contacts = {name: entity(f"door_{slug(name)}")["value_template"] for name in DEVICE.doors}
    for name, template in contacts.items():
        assert render(template, payload) == (expected if name == door else "")


def test_door_activity_reports_every_action_of_its_door() -> None:
    config = entity("door_main_activity")
    assert config["event_types"] == list(DOOR_ACTIONS)
    for action in DOOR_ACTIONS:
        out = render(config["value_template"], door_payload("main", action, A))
        assert json.loads(out) == {"event_type": action}
    assert render(config["value_template"], door_payload("back", "opened", A)) == ""


def test_alert_events_carry_state_and_no_evidence() -> None:
    config = entity("alert_overcrowding")
    assert config["state_topic"] == A.topic("alert/overcrowding")
    assert config["event_types"] == ["raised", "cleared"]
    payload = alert_payload(
        "overcrowding",
        "A-101",
        "raised",
        A,
        unit="A-101",
        counts={"inside": 3, "capacity": 2},
        evidence=("019ab0e2-aaaa", "019ab0e2-bbbb"),
        message="3 persons in A-101 (capacity 2)",
    )
    out = json.loads(render(config["value_template"], payload))
    assert out == {
        "event_type": "raised",
        "key": "A-101",
        "unit": "A-101",
        "message": "3 persons in A-101 (capacity 2)",
    }


def test_headcount_is_unknown_until_the_status_carries_it() -> None:
    template = entity("headcount")["value_template"]
    assert entity("headcount")["state_topic"] == A.status
    assert render(template, {"state": "online"}) == "None"  # HA: state unknown
    assert render(template, {"state": "online", "headcount": 3}) == "3"
    assert render(template, {"state": "online", "headcount": 0}) == "0"


def test_reader_connectivity_from_status() -> None:
    template = entity("reader_entrance")["value_template"]
    up = {"state": "online", "readers": {"entrance": {"connected": True}}}
    down = {"state": "online", "readers": {"entrance": {"connected": False}}}
    assert render(template, up) == "ON"
    assert render(template, down) == "OFF"
    assert render(template, {"state": "online", "readers": {"exit": {"connected": True}}}) == ""
    assert render(template, {"state": "online"}) == ""


@pytest.mark.parametrize("per_component", [False, True])
def test_payloads_never_carry_personal_identifiers(per_component: bool) -> None:
    for _, payload in discovery_messages(DEVICE, per_component=per_component):
        # No ID number (17 digits + check character) and no card UID (8+ hex digits) ...
        assert not re.search(r"\d{17}[\dXx]", payload)
        assert not re.search(r"\b[0-9A-Fa-f]{8,}\b", payload)
        # ... and no template reads a person-related field of any contract payload.
        read = set(re.findall(r"value_json\.(\w+)", payload))
        assert read <= ALLOWED_FIELDS, read - ALLOWED_FIELDS
        for word in ("occupant", "credential", "name_masked", "id_masked", "evidence"):
            assert word not in payload


@pytest.mark.parametrize("per_component", [False, True])
def test_removal_empties_every_discovery_topic(per_component: bool) -> None:
    announced = discovery_messages(DEVICE, per_component=per_component)
    removal = removal_messages(DEVICE, per_component=per_component)
    assert [topic for topic, _ in removal] == [topic for topic, _ in announced]
    assert {payload for _, payload in removal} == {""}


def test_component_layout_has_one_message_per_entity() -> None:
    messages = component_discovery(DEVICE)
    assert len(messages) == len(components(DEVICE))
    assert len({topic for topic, _ in messages}) == len(messages)
    assert {
        "homeassistant/binary_sensor/doorgate_s1_gA/door_main/config",
        "homeassistant/event/doorgate_s1_gA/door_main_activity/config",
        "homeassistant/sensor/doorgate_s1_gA/headcount/config",
        "homeassistant/event/doorgate_s1_gA/alert_vacancy/config",
    } <= {topic for topic, _ in messages}


def test_slugs_are_safe_and_distinct() -> None:
    names = ["main", "Main-2", "正门", "后门", "Gate 2", "Gate_2"]
    slugs = [slug(n) for n in names]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", s) for s in slugs)
    assert len(set(slugs)) == len(slugs)
    assert slug("main") == "main"
    assert slug("正门") == slug("正门")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"doors": ["main", "main"]},
        {"doors": [""]},
        {"doors": ["a\nb"]},
        {"doors": ["main"], "readers": ["r", "r"]},
        {"doors": ["main"], "alert_kinds": ["Not-A-Kind"]},
    ],
)
def test_invalid_names_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message names the bad value
        HaDevice(A, **kwargs)


def test_bad_site_is_refused() -> None:
    with pytest.raises(ValueError, match="site"):
        HaDevice(Topics("s/1", "gA"), doors=["main"])
