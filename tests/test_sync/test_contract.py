"""Payloads against the JSON Schemas shipped in sync/schemas, and the privacy baseline."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.contract import (
    AccessRecord,
    Topics,
    access_payload,
    check_segment,
    load_schema,
    new_event_id,
    rfc3339,
)

TOPICS = Topics("demo-district", "building-a")


def validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        load_schema(name), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def test_access_payload_matches_schema() -> None:
    rec = AccessRecord(
        new_event_id(),
        datetime.now(timezone(timedelta(hours=8))),
        "main",
        "in",
        "ic",
        "o1",
        "A-101",
        "******51C6",
        "deny",
        ("pending_approval",),
    )
    payload = access_payload(rec, TOPICS)
    validator("event_access").validate(payload)
    assert payload["ts"].endswith("Z")
    assert payload["schema"] == "doorgate.event.access/1"


def test_schema_rejects_a_raw_uid() -> None:
    rec = AccessRecord(
        new_event_id(),
        datetime.now(UTC),
        "main",
        "in",
        "ic",
        None,
        None,
        "67003B51C6",
        "deny",
        ("unknown_credential",),
    )
    with pytest.raises(jsonschema.ValidationError):
        validator("event_access").validate(access_payload(rec, TOPICS))


def test_event_ids_are_uuid7_and_time_ordered() -> None:
    ids = [new_event_id(1_700_000_000 + i / 1000) for i in range(50)]
    assert ids == sorted(ids)
    assert all(uuid.UUID(i).version == 7 for i in ids)


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.timezones()
    )
)
def test_rfc3339_is_utc_with_z(moment: datetime) -> None:
    text = rfc3339(moment)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", text)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert abs(parsed - moment) < timedelta(milliseconds=1)


@given(st.text(max_size=80))
def test_topic_segments_never_contain_wildcards_or_separators(value: str) -> None:
    try:
        check_segment(value, "site")
    except ValueError as err:
        assert "site must be" in str(err)
    else:
        assert not set(value) & {"/", "+", "#", " "}
        assert json.dumps(value)


def test_asyncapi_document_names_every_schema_and_topic() -> None:
    import importlib.resources

    import yaml

    folder = importlib.resources.files("sync").joinpath("schemas")
    doc = yaml.safe_load(folder.joinpath("asyncapi.yaml").read_text("utf-8"))
    assert doc["asyncapi"].startswith("3.")
    refs = {m["payload"]["$ref"] for m in doc["components"]["messages"].values()}
    shipped = {p.name for p in folder.iterdir() if p.name.endswith(".schema.json") and not p.name.startswith("cmd_")}
    assert refs == shipped
    for name in shipped:
        jsonschema.Draft202012Validator.check_schema(json.loads(folder.joinpath(name).read_text("utf-8")))
    addresses = {c["address"].split("{gateway}/")[1] for c in doc["channels"].values()}
    assert addresses == {"status", "units", "event/access", "event/door", "alert/{kind}", "enrolment/request",
                         "occupant/status",
                         "cmd/{name}", "reply/{commandId}"}
    for op in doc["operations"].values():
        assert op["channel"]["$ref"].removeprefix("#/channels/") in doc["channels"]
