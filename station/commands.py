"""The station's side of the downlink: sign commands, publish them, wait for the reply."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from station.store import StationStore
from sync.commands import SCHEMA_REPLY, build_command
from sync.contract import Topics
from sync.errors import LinkError
from sync.mqtt import BrokerSettings, make_client

logger = logging.getLogger(__name__)


class Commander:
    """Sends signed commands to gateways.

    Args:
        broker: the broker (the station's own identity; a distinct client id from the consumer).
        key: the station's Ed25519 private key.
        store: where versions are reserved and decisions recorded.
    """

    def __init__(self, broker: BrokerSettings, key: Ed25519PrivateKey, store: StationStore) -> None:
        self.broker = broker
        self.key = key
        self.store = store

    async def send(
        self,
        site: str,
        gateway: str,
        name: str,
        body: dict[str, Any],
        *,
        wait: float = 10.0,
        ttl: timedelta = timedelta(minutes=10),
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Publish a signed command; return (command, reply or None if none within `wait` s)."""
        topics = Topics(site, gateway)
        command = build_command(topics, name, body, self.key, ttl=ttl)
        reply_topic = topics.topic(f"reply/{command['id']}")
        try:
            async with make_client(self.broker, clean_session=True) as client:
                await client.subscribe(reply_topic, qos=1)
                await client.publish(topics.topic(f"cmd/{name}"), json.dumps(command), qos=1)
                reply = await _first_reply(client, reply_topic, wait) if wait > 0 else None
        except aiomqtt.MqttError as err:
            raise LinkError(f"broker {self.broker.url}: {err}") from err
        if reply is not None:
            self.store.add_reply(reply)
        return command, reply

    async def approve(
        self, site: str, gateway: str, occupant: str, *, by: str, wait: float = 10.0
    ) -> dict[str, Any] | None:
        """Approve an enrolment with a signed, versioned ``occupant_upsert``."""
        version = self.store.next_command_version(site, gateway, occupant)
        body = {
            "occupant_id": occupant,
            "version": version,
            "status": "approved",
            "approved_by": by,
        }
        issued = datetime.now(UTC).isoformat()
        _, reply = await self.send(site, gateway, "occupant_upsert", body, wait=wait)
        if reply is not None and reply.get("ok"):
            self.store.decide_enrolment(site, gateway, occupant, "approved", by=by, at=issued)
        return reply

    async def reject(
        self, site: str, gateway: str, occupant: str, *, by: str, reason: str, wait: float = 10.0
    ) -> dict[str, Any] | None:
        """Reject an enrolment: the occupant is suspended at the gateway, with the reason."""
        version = self.store.next_command_version(site, gateway, occupant)
        body = {"occupant_id": occupant, "version": version, "reason": reason}
        issued = datetime.now(UTC).isoformat()
        _, reply = await self.send(site, gateway, "occupant_revoke", body, wait=wait)
        if reply is not None and reply.get("ok"):
            self.store.decide_enrolment(
                site, gateway, occupant, "rejected", by=by, reason=reason, at=issued
            )
        return reply


async def _first_reply(client: aiomqtt.Client, topic: str, wait: float) -> dict[str, Any] | None:
    try:
        async with asyncio.timeout(wait):
            async for message in client.messages:
                # Some brokers (amqtt) also hand a new subscriber unrelated retained messages.
                if not message.topic.matches(topic):
                    continue
                raw = message.payload
                text = raw.decode() if isinstance(raw, bytes | bytearray) else str(raw)
                data: dict[str, Any] = json.loads(text)
                if data.get("schema") == SCHEMA_REPLY:
                    return data
    except TimeoutError:
        logger.warning("station: no reply within %.0f s (the gateway may be offline)", wait)
    return None
