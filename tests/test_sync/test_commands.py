"""Signed downlink commands: every way a command can be wrong gets its own reason code."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import assume, given
from hypothesis import strategies as st

from rules.model import OccupantStatus, Unit
from sync.commands import CommandRejected, Reply, build_command, check_command
from sync.contract import Topics, load_schema
from sync.downlink import Downlink
from sync.signing import sign
from sync.store import AsyncStore, Store

TOPICS = Topics("xh-001", "bldg-12")
KEY = Ed25519PrivateKey.generate()
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def raw(payload: dict[str, object]) -> bytes:
    return json.dumps(payload).encode()


def unlock(**changes: object) -> dict[str, object]:
    command = build_command(TOPICS, "unlock", {"door": "main"}, KEY, now=NOW)
    command.update(changes)
    return command


def check(payload: dict[str, object] | bytes, name: str = "unlock", now: datetime = NOW):  # type: ignore[no-untyped-def]
    data = payload if isinstance(payload, bytes) else raw(payload)
    return check_command(name, data, topics=TOPICS, key=KEY.public_key(), now=now)


def test_a_good_command_passes() -> None:
    command = check(unlock())
    assert command.name == "unlock"
    assert command.body == {"door": "main"}


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"{not json", "malformed"),
        (b"[]", "malformed"),
        ({k: v for k, v in unlock().items() if k != "sig"}, "unsigned"),
        (unlock(body={"door": "back"}), "bad_signature"),  # tampered after signing
        (sign(unlock(), Ed25519PrivateKey.generate()), "bad_signature"),  # another key
        (sign(unlock(gateway="bldg-13"), KEY), "wrong_target"),
        (sign(unlock(name="resync"), KEY), "malformed"),  # topic says unlock
        (sign(unlock(body={"door": 3}), KEY), "invalid_body"),
        (sign(unlock(body={"door": "main", "extra": 1}), KEY), "invalid_body"),
        (sign(unlock(nonce="short"), KEY), "malformed"),
        (sign(unlock(issued_at="yesterday"), KEY), "malformed"),
        (sign(unlock(expires_at="2026-11-22T12:00:00"), KEY), "malformed"),  # no time zone
    ],
)
def test_bad_commands_are_rejected_with_a_code(
    payload: dict[str, object] | bytes, code: str
) -> None:
    with pytest.raises(CommandRejected) as info:
        check(payload)
    assert info.value.code == code


def test_expired_and_future_commands() -> None:
    with pytest.raises(CommandRejected) as info:
        check(unlock(), now=NOW + timedelta(minutes=10))
    assert info.value.code == "expired"
    with pytest.raises(CommandRejected) as info:
        check(unlock(), now=NOW - timedelta(minutes=10))
    assert info.value.code == "not_yet_valid"
    check(unlock(), now=NOW - timedelta(seconds=60))  # within the allowed clock skew


def test_unknown_command_name() -> None:
    payload = build_command(TOPICS, "self_destruct", {}, KEY, now=NOW)
    with pytest.raises(CommandRejected) as info:
        check(payload, name="self_destruct")
    assert info.value.code == "unknown_command"


@given(st.binary(max_size=300))
def test_random_bytes_only_ever_raise_command_rejected(data: bytes) -> None:
    with pytest.raises(CommandRejected):
        check(data)


@given(
    st.dictionaries(
        st.sampled_from(["schema", "id", "nonce", "body", "sig", "name", "site"]),
        st.one_of(st.none(), st.integers(), st.text(max_size=10), st.lists(st.integers())),
    )
)
def test_random_envelopes_only_ever_raise_command_rejected(fields: dict[str, object]) -> None:
    original = unlock()
    assume(any(original.get(k) != v for k, v in fields.items()))
    with pytest.raises(CommandRejected):  # changed after signing
        check({**original, **fields})
    changed = {k: v for k, v in fields.items() if k != "sig"}
    if any(original.get(k) != v for k, v in changed.items()):
        with pytest.raises(CommandRejected):  # re-signed, but the content is invalid
            check(sign({**original, **changed}, KEY))


@pytest.fixture
async def astore(tmp_path: Path) -> AsyncIterator[AsyncStore]:
    store = Store.open(tmp_path / "g.db", b"k" * 32, TOPICS)
    store.add_unit(Unit("A-101", "A", 1, "101", 2))
    store.add_occupant(
        "A-101", "王芳", "440524188001010014", date(2026, 1, 1), None, occupant_id="o1"
    )
    s = AsyncStore(store)
    yield s
    await s.aclose()


async def test_downlink_applies_once_and_replies_through_the_outbox(astore: AsyncStore) -> None:
    calls: list[str] = []

    async def handler(command) -> Reply:  # type: ignore[no-untyped-def]
        calls.append(command.id)
        return Reply("applied", "ok")

    downlink = Downlink(astore, TOPICS, KEY.public_key(), {"unlock": handler})
    command = raw(build_command(TOPICS, "unlock", {"door": "main"}, KEY))
    first = await downlink.handle(TOPICS.topic("cmd/unlock"), command)
    again = await downlink.handle(TOPICS.topic("cmd/unlock"), command)
    garbage = await downlink.handle(TOPICS.topic("cmd/unlock"), b"\x00\xff")
    assert (first.code, again.code, garbage.code) == ("applied", "replayed", "malformed")
    assert len(calls) == 1
    rows = await astore.run(astore.store.outbox_batch)
    replies = [r for r in rows if r.topic.startswith("reply/")]
    assert [r.topic.split("/")[1] for r in replies] == [
        json.loads(command)["id"],
        json.loads(command)["id"],
        "invalid",
    ]
    schema = load_schema("reply")
    for row in replies:
        jsonschema.validate(json.loads(row.payload), schema)


async def test_versioned_upserts_are_idempotent(astore: AsyncStore) -> None:
    store = astore.store
    assert store.apply_station_change("o1", 2, {"status": "approved"})[0] == "applied"
    assert store.apply_station_change("o1", 2, {"status": "approved"})[0] == "stale"
    assert store.apply_station_change("o1", 1, {"status": "suspended"})[0] == "stale"
    assert store.get_occupant("o1").status is OccupantStatus.APPROVED
    code, occupant = store.apply_station_change("o1", 3, {"status": "moved_out"})
    assert code == "applied"
    assert occupant.status is OccupantStatus.MOVED_OUT


async def test_enrolment_queues_a_masked_request(astore: AsyncStore) -> None:
    rows = await astore.run(astore.store.outbox_batch)
    request = next(json.loads(r.payload) for r in rows if r.topic == "enrolment/request")
    jsonschema.validate(request, load_schema("enrolment_request"))
    assert request["name_masked"] == "王*"
    assert request["id_masked"] == "440524********0014"
    assert "440524188001010014" not in json.dumps(request)
