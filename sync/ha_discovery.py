"""Home Assistant MQTT discovery for one gateway: pure payload builders, no I/O.

Home Assistant (HA) subscribes to the broker beside the station and shows each gateway as one
device whose entities read the gateway's own contract topics (nothing extra is published):

- per door, a ``binary_sensor`` (device class ``door``) from ``event/door``: ``opened``,
  ``forced`` and ``held_open`` mean open, ``closed`` means closed; messages about other doors
  and other actions render empty, which HA ignores;
- per door, an ``event`` entity "activity" from ``event/door`` (every action, including
  ``remote_unlock`` and ``exit_request``);
- a ``sensor`` "headcount" (persons inside) from the retained ``status`` payload's
  ``headcount`` field (``unknown`` while the status carries none);
- per reader, a ``binary_sensor`` (device class ``connectivity``) from ``status.readers``;
- per alert kind, an ``event`` entity from ``alert/<kind>`` with event types ``raised`` and
  ``cleared``.

Every entity is available while the retained ``status`` says ``state: online`` (the last will
turns it ``offline``).

**No ``lock`` entity.** An MQTT lock needs a ``command_topic`` HA publishes to; a gateway accepts
only commands signed with the station's Ed25519 key, which must never be handed to HA, and the
broker's ACL lets only the station write ``cmd/#``. A read-only "lock" cannot be had either: the
contract does not report the lock relay's state (only door contact and ``remote_unlock``), and a
state guessed from door events would lie. Remote unlocking stays a station action, audited there;
HA sees it as an ``activity`` event.

Privacy: templates pass HA only door and reader names, actions, alert states, alert keys, units
and the headcount - never occupant ids, credentials, names or masked ID numbers, and HA's broker
identity is not allowed to read ``event/access`` or ``enrolment/#`` at all.

Two discovery layouts are offered, same entities and unique ids:

- :func:`device_discovery` (default, HA >= 2024.11): ONE retained message on
  ``homeassistant/device/<site>/<gateway>/config``, which the broker ACL can confine to the
  gateway's certificate (``pattern write homeassistant/device/%u/config``);
- :func:`component_discovery` (older HA): one retained message per entity on
  ``homeassistant/<component>/doorgate_<site>_<gateway>/<object_id>/config``; the ACL cannot
  express that node id from ``%u``, so each gateway then needs its own ``user`` block.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rules.alerts import AlertKind
from sync.contract import Topics, check_segment

DISCOVERY_PREFIX = "homeassistant"
HEADCOUNT_FIELD = "headcount"
"""Field of the ``status`` payload the headcount sensor reads (persons inside the building)."""

DOOR_ACTIONS = ("opened", "closed", "forced", "held_open", "exit_request", "remote_unlock")
"""Event types of a door's activity entity: the ``action`` values of ``event/door``."""

_DOOR_STATE = {"opened": "ON", "forced": "ON", "held_open": "ON", "closed": "OFF"}
_ALERT_STATES = ("raised", "cleared")
_OBJECT_ID = re.compile(r"^[A-Za-z0-9_-]+$")
_AVAILABILITY_TEMPLATE = "{{ value_json.state }}"


def _literal(value: str) -> str:
    """A Jinja string literal for ``value`` (JSON string syntax is valid Jinja)."""
    return json.dumps(value, ensure_ascii=False)


def slug(name: str) -> str:
    """An HA object id for a door or reader name (``[A-Za-z0-9_-]``), stable across runs.

    Names that are already safe are kept as they are (lower-cased); any other name - Chinese
    ``正门``, ``Gate 2`` - keeps its safe characters and gains a short hash of the full name, so
    two names never collide.

    Args:
        name: the configured door or reader name.

    Returns:
        The object id.
    """
    if _OBJECT_ID.match(name):
        return name.lower()
    kept = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower()
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return f"{kept}_{digest}" if kept else digest


@dataclass(frozen=True, slots=True)
class HaDevice:
    """What HA discovery needs to know about one gateway.

    Attributes:
        topics: the gateway's topics (site and gateway name).
        doors: configured door names, as ``event/door`` payloads name them.
        readers: configured reader names, as the status payload's ``readers`` keys name them.
        alert_kinds: alert kinds to expose (``alert/<kind>`` topics); all known kinds by default.
        name: device name shown in HA; ``doorgate <site>/<gateway>`` by default.
        sw_version: the gateway's software version, shown in HA.
        discovery_prefix: HA's discovery prefix (``homeassistant`` unless changed in HA).
    """

    topics: Topics
    doors: Sequence[str]
    readers: Sequence[str] = ()
    alert_kinds: Sequence[str] = field(default_factory=lambda: tuple(k.value for k in AlertKind))
    name: str | None = None
    sw_version: str | None = None
    discovery_prefix: str = DISCOVERY_PREFIX

    def __post_init__(self) -> None:
        """Validate names: they end up in topics, object ids and templates.

        Raises:
            ValueError: a name is empty, duplicated, contains control characters, or two names
                map to the same object id.
        """
        check_segment(self.topics.site, "site")
        check_segment(self.topics.gateway, "gateway")
        for what, names in (("door", self.doors), ("reader", self.readers)):
            slugs = [slug(n) for n in names]
            if len(set(slugs)) != len(slugs):
                raise ValueError(f"{what} names must be unique: {list(names)!r}")
            for name in names:
                if not name or any(ord(c) < 32 for c in name):
                    raise ValueError(f"invalid {what} name {name!r}")
        for kind in self.alert_kinds:
            if not re.fullmatch(r"[a-z_]{1,40}", kind):
                raise ValueError(f"invalid alert kind {kind!r}")

    @property
    def node_id(self) -> str:
        """``doorgate_<site>_<gateway>``: HA device identifier and unique-id prefix."""
        return f"doorgate_{self.topics.site}_{self.topics.gateway}"

    def device_block(self) -> dict[str, Any]:
        """The ``device`` block shared by every entity of this gateway."""
        block: dict[str, Any] = {
            "identifiers": [self.node_id],
            "name": self.name or f"doorgate {self.topics.site}/{self.topics.gateway}",
            "manufacturer": "doorgate",
            "model": "doorgate gateway",
        }
        if self.sw_version:
            block["sw_version"] = self.sw_version
        return block


def _availability(device: HaDevice) -> dict[str, Any]:
    return {
        "availability": [
            {
                "topic": device.topics.status,
                "value_template": _AVAILABILITY_TEMPLATE,
                "payload_available": "online",
                "payload_not_available": "offline",
            }
        ],
    }


def _door_contact_template(door: str) -> str:
    states = "{" + ", ".join(f'"{k}": "{v}"' for k, v in _DOOR_STATE.items()) + "}"
    return (
        f"{{% if value_json.door == {_literal(door)} %}}"
        f'{{{{ {states}.get(value_json.action, "") }}}}'
        "{% endif %}"
    )


def _door_activity_template(door: str) -> str:
    return (
        f"{{% if value_json.door == {_literal(door)} %}}"
        '{{ {"event_type": value_json.action} | to_json }}'
        "{% endif %}"
    )


def _reader_template(reader: str) -> str:
    key = _literal(reader)
    return (
        f"{{% if value_json.readers is defined and {key} in value_json.readers %}}"
        f'{{{{ "ON" if value_json.readers[{key}].connected else "OFF" }}}}'
        "{% endif %}"
    )


_HEADCOUNT_TEMPLATE = (
    f"{{{{ value_json.{HEADCOUNT_FIELD} if value_json.{HEADCOUNT_FIELD} is defined else None }}}}"
)
_ALERT_TEMPLATE = (
    '{{ {"event_type": value_json.state, "key": value_json.key, "unit": value_json.unit,'
    ' "message": value_json.message | default("")} | to_json }}'
)


def components(device: HaDevice) -> dict[str, dict[str, Any]]:
    """Every entity of the gateway: object id -> entity config (with ``platform``).

    The configs carry ``unique_id``, ``state_topic``, ``availability`` and ``device``; the
    discovery builders below add nothing but the layout.

    Args:
        device: the gateway.

    Returns:
        Entity configs keyed by object id; ``platform`` names the HA component.
    """
    topics = device.topics
    common = _availability(device)
    out: dict[str, dict[str, Any]] = {}

    def add(object_id: str, platform: str, config: dict[str, Any]) -> None:
        out[object_id] = {
            "platform": platform,
            "unique_id": f"{device.node_id}_{object_id}",
            **config,
            **common,
            "device": device.device_block(),
        }

    for door in device.doors:
        door_id = slug(door)
        add(
            f"door_{door_id}",
            "binary_sensor",
            {
                "name": f"Door {door}",
                "device_class": "door",
                "state_topic": topics.topic("event/door"),
                "value_template": _door_contact_template(door),
                "payload_on": "ON",
                "payload_off": "OFF",
            },
        )
        add(
            f"door_{door_id}_activity",
            "event",
            {
                "name": f"Door {door} activity",
                "state_topic": topics.topic("event/door"),
                "value_template": _door_activity_template(door),
                "event_types": list(DOOR_ACTIONS),
            },
        )
    add(
        "headcount",
        "sensor",
        {
            "name": "Headcount",
            "state_topic": topics.status,
            "value_template": _HEADCOUNT_TEMPLATE,
            "state_class": "measurement",
            "unit_of_measurement": "persons",
            "icon": "mdi:account-group",
        },
    )
    for reader in device.readers:
        add(
            f"reader_{slug(reader)}",
            "binary_sensor",
            {
                "name": f"Reader {reader}",
                "device_class": "connectivity",
                "entity_category": "diagnostic",
                "state_topic": topics.status,
                "value_template": _reader_template(reader),
                "payload_on": "ON",
                "payload_off": "OFF",
            },
        )
    for kind in device.alert_kinds:
        add(
            f"alert_{kind}",
            "event",
            {
                "name": f"Alert {kind.replace('_', ' ')}",
                "state_topic": topics.topic(f"alert/{kind}"),
                "value_template": _ALERT_TEMPLATE,
                "event_types": list(_ALERT_STATES),
                "icon": "mdi:alert",
            },
        )
    return out


def _dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def device_topic(device: HaDevice) -> str:
    """``<prefix>/device/<site>/<gateway>/config``: the device-discovery topic.

    ``<site>`` is HA's optional node id and ``<gateway>`` the object id, so the topic equals
    ``homeassistant/device/%u/config`` for the gateway's certificate name ``<site>/<gateway>``.

    Args:
        device: the gateway.

    Returns:
        The topic.
    """
    return f"{device.discovery_prefix}/device/{device.topics.site}/{device.topics.gateway}/config"


def device_discovery(device: HaDevice) -> list[tuple[str, str]]:
    """Device-based discovery (HA >= 2024.11): one retained message with every entity.

    Args:
        device: the gateway.

    Returns:
        ``[(topic, payload)]``: publish it retained, QoS 1, at every connection (HA re-reads
        retained discovery when it restarts).
    """
    cmps: dict[str, dict[str, Any]] = {}
    for object_id, config in components(device).items():
        entity = {k: v for k, v in config.items() if k not in {"platform", "device"}}
        entity["platform"] = config["platform"]
        cmps[object_id] = entity
    origin: dict[str, Any] = {"name": "doorgate"}
    if device.sw_version:
        origin["sw_version"] = device.sw_version
    payload = {"device": device.device_block(), "origin": origin, "components": cmps, "qos": 1}
    return [(device_topic(device), _dumps(payload))]


def component_topic(device: HaDevice, platform: str, object_id: str) -> str:
    """``<prefix>/<component>/doorgate_<site>_<gateway>/<object_id>/config``.

    Args:
        device: the gateway.
        platform: the HA component (``binary_sensor``, ``sensor``, ``event``).
        object_id: the entity's object id within the gateway.

    Returns:
        The topic.
    """
    return f"{device.discovery_prefix}/{platform}/{device.node_id}/{object_id}/config"


def component_discovery(device: HaDevice) -> list[tuple[str, str]]:
    """Per-entity discovery (any HA version): one retained message per entity.

    Args:
        device: the gateway.

    Returns:
        ``[(topic, payload)]``, one per entity, each to publish retained at QoS 1.
    """
    messages = []
    for object_id, config in components(device).items():
        entity = {k: v for k, v in config.items() if k != "platform"}
        messages.append((component_topic(device, config["platform"], object_id), _dumps(entity)))
    return messages


def discovery_messages(device: HaDevice, *, per_component: bool = False) -> list[tuple[str, str]]:
    """The retained discovery messages announcing the gateway to HA.

    Args:
        device: the gateway.
        per_component: True for one message per entity (HA before 2024.11).

    Returns:
        ``[(topic, payload)]`` to publish retained at QoS 1.
    """
    return component_discovery(device) if per_component else device_discovery(device)


def removal_messages(device: HaDevice, *, per_component: bool = False) -> list[tuple[str, str]]:
    """Empty retained payloads that remove the gateway's entities (and the device) from HA.

    An empty retained publish also deletes the retained discovery message from the broker.

    Args:
        device: the gateway, with the doors and readers it was announced with.
        per_component: the layout it was announced with.

    Returns:
        ``[(topic, "")]`` to publish retained at QoS 1.
    """
    return [(topic, "") for topic, _ in discovery_messages(device, per_component=per_component)]
