"""The downlink: verifies signed commands from the station, runs their handlers, queues replies.

Replies go through the outbox like every other upward message, so a reply survives a broker
outage or a restart just as events do.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sync.commands import Command, CommandRejected, Reply, check_command, reply_payload
from sync.contract import Topics, dumps
from sync.errors import SyncError
from sync.store import AsyncStore

logger = logging.getLogger(__name__)

Handler = Callable[[Command], Awaitable[Reply]]


class Downlink:
    """Turns ``cmd/<name>`` messages into handler calls and ``reply/<id>`` outbox rows.

    Args:
        store: the gateway store (nonces and the outbox).
        topics: this gateway's topics.
        station_key: the station's Ed25519 public key.
        handlers: one coroutine per command name.
        notify: called after a reply was queued (wakes the uplink).
    """

    def __init__(
        self,
        store: AsyncStore,
        topics: Topics,
        station_key: Ed25519PublicKey,
        handlers: Mapping[str, Handler],
        notify: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.topics = topics
        self.station_key = station_key
        self.handlers = dict(handlers)
        self.notify = notify
        self.rejected = 0

    @property
    def subscription(self) -> str:
        """The topic filter for this gateway's commands."""
        return self.topics.topic("cmd/+")

    async def handle(self, topic: str, raw: bytes) -> Reply:
        """Process one command message end to end; never raises for bad input."""
        name = topic.rsplit("/", 1)[-1]
        command: Command | None = None
        try:
            command = check_command(
                name, raw, topics=self.topics, key=self.station_key, now=datetime.now(UTC)
            )
            reply = await self._run(command)
        except CommandRejected as err:
            self.rejected += 1
            logger.warning("downlink: rejected cmd/%s: %s (%s)", name, err, err.code)
            reply = Reply(err.code, str(err), ok=False)
        await self._queue_reply(command, name, raw, reply)
        return reply

    async def _run(self, command: Command) -> Reply:
        fresh = await self.store.run(self.store.store.use_nonce, command.nonce, command.expires_at)
        if not fresh:
            raise CommandRejected("replayed", f"nonce {command.nonce[:8]}… was already used")
        handler = self.handlers.get(command.name)
        if handler is None:
            raise CommandRejected("unknown_command", f"this gateway does not handle {command.name}")
        try:
            reply = await handler(command)
        except (SyncError, ValueError) as err:
            raise CommandRejected("failed", str(err)) from err
        logger.info("downlink: %s %s → %s", command.name, command.id, reply.code)
        return reply

    async def _queue_reply(
        self, command: Command | None, name: str, raw: bytes, reply: Reply
    ) -> None:
        command_id = command.id if command else _claimed_id(raw)
        payload = reply_payload(
            self.topics, command_id, command.name if command else name, reply, datetime.now(UTC)
        )
        suffix = f"reply/{command_id}" if command_id else "reply/invalid"
        store = self.store.store
        await self.store.run(store.enqueue, payload["id"], suffix, dumps(payload))
        self.notify()


def _claimed_id(raw: bytes) -> str | None:
    """The id a rejected command claims, if it is a safe topic segment (else None)."""
    try:
        value = json.loads(raw).get("id")
    except (ValueError, AttributeError):
        return None
    ok = (
        isinstance(value, str)
        and 0 < len(value) <= 64
        and all(c.isalnum() or c == "-" for c in value)
    )
    return value if ok else None
