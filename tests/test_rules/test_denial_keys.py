"""`repeated_denial` counts per credential: one counter per ID card, per face, per card.

The daemon hands the rules every ID-card credential and every face credential with the id 0
(`Store.resolve_id_number`, `gateway.cameras.face_credential`); the key must not depend on it.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta

from rules.alerts import AlertKind, AlertState
from rules.engine import RulesConfig, RulesState, Site, credential_key, step
from rules.identity import SHORT_HASH_LEN, keyed_hash
from rules.model import (
    AccessRequest,
    Credential,
    CredentialKind,
    CredentialStatus,
    Direction,
    Occupant,
    OccupantStatus,
    Unit,
)

T0 = datetime(2026, 3, 2, 14, 0)
SECRET = b"0123456789abcdef0123456789abcdef"
NUMBERS = [f"11010519900307{i:03d}X" for i in range(5)]
PEOPLE = {
    f"p{i}": Occupant(f"p{i}", "101", f"p{i}", "x", OccupantStatus.SUSPENDED, date(2026, 1, 1))
    for i in range(5)
}
SITE = Site({"101": Unit("101", "A", 1, "101", 9)}, PEOPLE)
CONFIG = RulesConfig()


def idcard(person: int, at: datetime, event_id: str) -> AccessRequest:
    """As `Gateway.handle_card` builds it: credential id 0, presented = id_hash = keyed hash."""
    occupant = PEOPLE[f"p{person}"]
    digest = keyed_hash(SECRET, "idcard", NUMBERS[person])
    credential = Credential(0, occupant.id, CredentialKind.IDCARD, CredentialStatus.ACTIVE)
    return AccessRequest(
        "main", Direction.IN, CredentialKind.IDCARD, at, credential, occupant, event_id,
        presented=digest, id_hash=digest,
    )  # fmt: skip


def unknown_idcard(number: str, at: datetime, event_id: str) -> AccessRequest:
    digest = keyed_hash(SECRET, "idcard", number)
    return AccessRequest(
        "main", Direction.IN, CredentialKind.IDCARD, at, event_id=event_id,
        presented=digest, id_hash=digest,
    )  # fmt: skip


def face(person: int, at: datetime, event_id: str) -> AccessRequest:
    """As `Gateway.handle_face` builds it: `face_credential` has the id 0."""
    occupant = PEOPLE[f"p{person}"]
    credential = Credential(0, occupant.id, CredentialKind.FACE, CredentialStatus.ACTIVE)
    return AccessRequest(
        "main", Direction.IN, CredentialKind.FACE, at, credential, occupant, event_id,
        presented=f"face:{occupant.id}",
    )  # fmt: skip


def denial_alerts(requests: list[AccessRequest]) -> list[tuple[str, AlertState, int]]:
    state, raised = RulesState(), []
    for request in requests:
        state, outcome = step(state, request, request.at, CONFIG, SITE)
        assert outcome.decision is not None and not outcome.decision.allowed
        raised += [
            (a.key, a.state, len(a.evidence))
            for a in outcome.alerts
            if a.kind is AlertKind.REPEATED_DENIAL
        ]
    return raised


def burst(make, who: list[int]) -> list[AccessRequest]:  # type: ignore[no-untyped-def]
    return [make(p, T0 + timedelta(seconds=5 * i), f"e{i}") for i, p in enumerate(who)]


def test_id_cards_of_five_people_denied_once_each_raise_nothing() -> None:
    assert denial_alerts(burst(idcard, [0, 1, 2, 3, 4])) == []


def test_faces_of_five_people_denied_once_each_raise_nothing() -> None:
    assert denial_alerts(burst(face, [0, 1, 2, 3, 4])) == []


def test_unknown_id_cards_of_five_people_raise_nothing() -> None:
    requests = [
        unknown_idcard(f"44052419800101{i:03d}4", T0 + timedelta(seconds=i), f"u{i}")
        for i in range(5)
    ]
    assert denial_alerts(requests) == []


def test_one_persons_id_card_denied_five_times_raises_under_a_short_hash() -> None:
    alerts = denial_alerts(burst(idcard, [3, 3, 3, 3, 3]))
    digest = keyed_hash(SECRET, "idcard", NUMBERS[3])
    assert alerts == [(f"idcard:{digest[:SHORT_HASH_LEN]}", AlertState.RAISED, 5)]
    key = alerts[0][0]
    assert NUMBERS[3] not in key and digest not in key  # neither the number nor the full HMAC


def test_one_persons_face_denied_five_times_raises_under_the_occupant() -> None:
    assert denial_alerts(burst(face, [2, 2, 2, 2, 2])) == [("face:p2", AlertState.RAISED, 5)]


def test_mixed_burst_counts_only_the_repeated_credential() -> None:
    alerts = denial_alerts(burst(idcard, [0, 1, 0, 2, 0, 0, 4, 0]))
    digest = keyed_hash(SECRET, "idcard", NUMBERS[0])
    assert alerts == [(f"idcard:{digest[:SHORT_HASH_LEN]}", AlertState.RAISED, 5)]


def test_keys_never_carry_a_full_hash_or_raw_value() -> None:
    uid = hashlib.sha256(b"uid").hexdigest()
    unknown_card = AccessRequest("main", Direction.IN, CredentialKind.IC, T0, presented=uid)
    assert credential_key(unknown_card) == f"card:{uid[:SHORT_HASH_LEN]}"
    known_ic = AccessRequest(
        "main", Direction.IN, CredentialKind.IC, T0,
        Credential(7, "p1", CredentialKind.IC, CredentialStatus.ACTIVE), PEOPLE["p1"],
        presented=uid,
    )  # fmt: skip
    assert credential_key(known_ic) == "credential:7"
