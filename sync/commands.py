"""Downlink commands: the signed envelope, its checks, and the reply.

A command is ``doorgate.cmd/1`` JSON published by the station on ``<root>/cmd/<name>``:
``id``, ``ts``, ``site``, ``gateway``, ``name``, ``issued_at``, ``expires_at``, ``nonce``,
``body`` and an Ed25519 ``sig`` over all the rest. The gateway rejects anything unsigned, expired,
replayed, meant for another gateway or malformed, with a reason code in ``reply/<id>``.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sync.contract import Topics, envelope, load_schema, new_event_id, rfc3339
from sync.signing import sign, verify

SCHEMA_CMD = "doorgate.cmd/1"
SCHEMA_REPLY = "doorgate.reply/1"
COMMANDS = (
    "occupant_upsert",
    "occupant_revoke",
    "occupant_move_out",
    "resync",
    "unlock",
    "rules_config",
)
CLOCK_SKEW = timedelta(seconds=120)
MAX_TTL = timedelta(days=7)


class CommandRejected(ValueError):
    """A command the gateway refuses; `code` is the machine-readable reason in the reply.

    Codes: malformed, unsigned, bad_signature, wrong_target, expired, not_yet_valid,
    replayed, unknown_command, invalid_body, failed.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Command:
    """A verified command, ready for its handler."""

    id: str
    name: str
    issued_at: datetime
    expires_at: datetime
    nonce: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Reply:
    """What a handler reports back: ``applied`` / ``unchanged`` / ``stale``, a message, data."""

    code: str
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    ok: bool = True


def build_command(
    topics: Topics,
    name: str,
    body: dict[str, Any],
    key: Ed25519PrivateKey,
    *,
    now: datetime | None = None,
    ttl: timedelta = timedelta(minutes=5),
) -> dict[str, Any]:
    """The signed command payload the station publishes (to ``topics.topic('cmd/' + name)``)."""
    now = now or datetime.now(UTC)
    payload = envelope(SCHEMA_CMD, new_event_id(now.timestamp()), now, topics)
    payload.update(
        name=name,
        issued_at=rfc3339(now),
        expires_at=rfc3339(now + ttl),
        nonce=secrets.token_hex(16),
        body=body,
    )
    return sign(payload, key)


def _parse_time(value: object, what: str) -> datetime:
    if not isinstance(value, str):
        raise CommandRejected("malformed", f"{what} must be an RFC 3339 time")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as err:
        raise CommandRejected("malformed", f"{what} is not an RFC 3339 time: {value!r}") from err
    if moment.tzinfo is None:
        raise CommandRejected("malformed", f"{what} must carry a time zone")
    return moment


def _decode(raw: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CommandRejected("malformed", f"command is not JSON: {err}") from err
    if not isinstance(payload, dict):
        raise CommandRejected("malformed", "command must be a JSON object")
    return payload


def check_command(
    topic_name: str, raw: bytes, *, topics: Topics, key: Ed25519PublicKey, now: datetime
) -> Command:
    """Verify a command received on ``cmd/<topic_name>``; the nonce is checked by the caller.

    Raises:
        CommandRejected: with the reason code for the reply.
    """
    payload = _decode(raw)
    if "sig" not in payload:
        raise CommandRejected("unsigned", "command carries no signature")
    try:
        jsonschema.validate(payload, load_schema("cmd"))
    except jsonschema.ValidationError as err:
        raise CommandRejected("malformed", f"command envelope: {err.message}") from err
    if not verify(payload, key):
        raise CommandRejected("bad_signature", "signature does not verify with the station key")
    if (payload["site"], payload["gateway"]) != (topics.site, topics.gateway):
        raise CommandRejected(
            "wrong_target", f"command is for {payload['site']}/{payload['gateway']}"
        )
    if payload["name"] != topic_name:
        raise CommandRejected("malformed", f"topic cmd/{topic_name} carries a {payload['name']!r}")
    command = Command(
        id=payload["id"],
        name=payload["name"],
        issued_at=_parse_time(payload["issued_at"], "issued_at"),
        expires_at=_parse_time(payload["expires_at"], "expires_at"),
        nonce=payload["nonce"],
        body=payload["body"],
    )
    _check_window(command, now)
    _check_body(command)
    return command


def _check_window(command: Command, now: datetime) -> None:
    if command.expires_at - command.issued_at > MAX_TTL:
        raise CommandRejected("malformed", "command validity exceeds 7 days")
    if now > command.expires_at + CLOCK_SKEW:
        raise CommandRejected("expired", f"command expired at {rfc3339(command.expires_at)}")
    if now < command.issued_at - CLOCK_SKEW:
        raise CommandRejected(
            "not_yet_valid", f"command issued in the future ({rfc3339(command.issued_at)})"
        )


def _check_body(command: Command) -> None:
    if command.name not in COMMANDS:
        raise CommandRejected("unknown_command", f"no command named {command.name!r}")
    try:
        jsonschema.validate(command.body, load_schema(f"cmd_{command.name}"))
    except jsonschema.ValidationError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "body"
        raise CommandRejected("invalid_body", f"{command.name}: {where}: {err.message}") from err


def reply_payload(
    topics: Topics, command_id: str | None, command: str | None, reply: Reply, now: datetime
) -> dict[str, Any]:
    """The ``reply/<command id>`` payload."""
    payload = envelope(SCHEMA_REPLY, new_event_id(now.timestamp()), now, topics)
    payload.update(
        command_id=command_id,
        command=command,
        ok=reply.ok,
        code=reply.code,
        message=reply.message,
        data=reply.data,
    )
    return payload
