"""The station dashboard over Starlette's TestClient: roles, CSRF, floor plan, approvals, SSE."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.testclient import TestClient

from rules.model import Occupant, OccupantStatus
from station.consumer import StationConsumer
from station.store import StationStore
from station.web.app import create_app
from station.web.store import WebStore, floor_of
from sync.contract import (
    AccessRecord,
    Topics,
    access_payload,
    alert_payload,
    dumps,
    enrolment_payload,
    new_event_id,
)
from sync.mqtt import BrokerSettings
from sync.webauth import RateLimiter

PASSWORD = "station secret"
TOPICS = Topics("xh-001", "bldg-12")


class FakeCommander:
    """Records commands and answers like a gateway would."""

    def __init__(self, store: StationStore) -> None:
        self.store = store
        self.calls: list[tuple[str, str]] = []

    async def approve(self, site: str, gateway: str, occupant: str, *, by: str, wait: float) -> dict[str, Any]:
        self.calls.append(("approve", occupant))
        self.store.decide_enrolment(site, gateway, occupant, "approved", by=by)
        return {"ok": True, "code": "applied"}

    async def reject(
        self, site: str, gateway: str, occupant: str, *, by: str, reason: str, wait: float
    ) -> dict[str, Any]:
        self.calls.append(("reject:" + reason, occupant))
        self.store.decide_enrolment(site, gateway, occupant, "rejected", by=by, reason=reason)
        return {"ok": True, "code": "applied"}

    async def send(self, site: str, gateway: str, name: str, body: dict[str, Any], *, wait: float) -> tuple[dict[str, Any], dict[str, Any]]:
        self.calls.append((name, body["door"]))
        return {}, {"ok": True, "code": "applied"}


def publish(consumer: StationConsumer, kind: str, payload: dict[str, Any]) -> None:
    consumer.handle(TOPICS.topic(kind), dumps(payload).encode())


def enrol(consumer: StationConsumer, occupant: str, unit: str, name: str = "张伟") -> None:
    person = Occupant(occupant, unit, name, "110105********002X", OccupantStatus.PENDING, date(2026, 1, 1), None)
    publish(consumer, "enrolment/request", enrolment_payload(person, name, 1, TOPICS))


def access(consumer: StationConsumer, occupant: str, unit: str, direction: str = "in") -> None:
    record = AccessRecord(
        new_event_id(), datetime.now(UTC), "main", direction, "ic", occupant, unit, "******51C6",
        "allow", ("granted",),
    )
    publish(consumer, "event/access", access_payload(record, TOPICS))


@pytest.fixture
def env(tmp_path: Path) -> Iterator[SimpleNamespace]:
    store = StationStore(tmp_path / "station.db")
    web = WebStore(store)
    web.add_user("staff", "station_staff", PASSWORD)
    web.add_user("admin", "station_admin", PASSWORD)
    consumer = StationConsumer(store, BrokerSettings.from_url("mqtt://127.0.0.1:1", "x"))
    commander = FakeCommander(store)
    app = create_app(store, commander=commander, limiter=RateLimiter(limit=3, window=60))  # type: ignore[arg-type]
    yield SimpleNamespace(app=app, store=store, web=web, consumer=consumer, commander=commander)
    store.close()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, html
    return match.group(1)


def sign_in(app: object, user: str, password: str = PASSWORD) -> tuple[TestClient, str]:
    client = TestClient(app)  # type: ignore[arg-type]
    page = client.get("/login?lang=en")
    response = client.post("/login", data={"user": user, "password": password, "csrf": csrf_of(page.text)})
    assert response.status_code == 200, response.text
    return client, csrf_of(response.text)


def test_floor_of_house_codes() -> None:
    assert [floor_of(u) for u in ("A-101", "B-1203", "x7", "301")] == [1, 12, None, 3]


def test_roles_are_station_only(env: SimpleNamespace) -> None:
    with pytest.raises(ValueError, match="role"):
        env.web.add_user("li", "landlord", PASSWORD)
    client = TestClient(env.app, follow_redirects=False)
    assert client.get("/").headers["location"] == "/login"


def test_csrf_and_rate_limit(env: SimpleNamespace) -> None:
    admin, _ = sign_in(env.app, "admin")
    client = TestClient(env.app)
    csrf = csrf_of(client.get("/login").text)
    assert client.post("/login", data={"user": "staff", "password": PASSWORD}).status_code == 403
    for _ in range(3):
        assert client.post("/login", data={"user": "staff", "password": "nope nope", "csrf": csrf}).status_code == 401
    # Blocked per account and per address, even with the right password now.
    assert client.post("/login", data={"user": "staff", "password": PASSWORD, "csrf": csrf}).status_code == 429
    assert client.post("/login", data={"user": "admin", "password": PASSWORD, "csrf": csrf}).status_code == 429
    enrol(env.consumer, "occ1", "A-101")
    assert admin.post("/approvals/xh-001/bldg-12/occ1/approve", data={"csrf": "0" * 64}).status_code == 403
    assert env.commander.calls == []


def test_floor_plan_colours_and_counts(env: SimpleNamespace) -> None:
    enrol(env.consumer, "occ1", "A-101")
    enrol(env.consumer, "occ2", "A-201")
    env.store.decide_enrolment("xh-001", "bldg-12", "occ2", "approved", by="t")
    access(env.consumer, "occ2", "A-201")
    units = {u["unit"]: u for u in env.web.units("xh-001", "bldg-12")}
    assert units["A-101"]["colour"] == "yellow" and units["A-201"]["colour"] == "green"
    assert units["A-201"]["registered"] == 1 and units["A-201"]["inside"] == 1
    access(env.consumer, "occ2", "A-201", "out")
    assert env.web.units("xh-001", "bldg-12")[1]["inside"] == 0
    publish(env.consumer, "alert/overcrowding", alert_payload("overcrowding", "A-201", "raised", TOPICS, unit="A-201"))
    client, _ = sign_in(env.app, "staff")
    page = client.get("/b/xh-001/bldg-12?lang=zh")
    assert 'id="cell-A-201" data-colour="red"' in page.text
    assert 'id="cell-A-101" data-colour="yellow"' in page.text
    assert "2 层" in page.text and "超员居住" in page.text and "<svg" in page.text
    assert "今晚在内" in page.text and ">?</abbr>" in page.text
    detail = client.get("/b/xh-001/bldg-12/u/A-201?lang=en")
    assert "Unit A-201" in detail.text and "******51C6" in detail.text
    assert client.get("/b/xh-001/nope").status_code == 404


def test_approve_and_reject_send_commands_with_audit(env: SimpleNamespace) -> None:
    enrol(env.consumer, "occ1", "A-101")
    enrol(env.consumer, "occ2", "A-102", "王芳")
    client, csrf = sign_in(env.app, "staff")
    page = client.get("/approvals")
    assert "张*" in page.text and "110105********002X" in page.text
    page = client.post("/approvals/xh-001/bldg-12/occ1/approve", data={"csrf": csrf})
    assert page.status_code == 200 and "occ1 approved" in page.text
    assert client.post("/approvals/xh-001/bldg-12/occ2/reject", data={"csrf": csrf}).status_code == 400
    page = client.post("/approvals/xh-001/bldg-12/occ2/reject", data={"csrf": csrf, "reason": "证件不符"})
    assert page.status_code == 200 and 'id="no-approvals"' in page.text
    assert env.commander.calls == [("approve", "occ1"), ("reject:证件不符", "occ2")]
    audit = [(a["actor"], a["action"], a["target"]) for a in env.web.audit_rows()]
    assert ("staff", "approve", "xh-001/bldg-12/occ1") in audit
    assert ("staff", "reject", "xh-001/bldg-12/occ2") in audit
    assert "批准" in client.get("/audit?lang=zh").text


def test_remote_unlock_is_admin_only_and_audited(env: SimpleNamespace) -> None:
    enrol(env.consumer, "occ1", "A-101")
    staff, csrf = sign_in(env.app, "staff")
    assert staff.post("/b/xh-001/bldg-12/unlock", data={"csrf": csrf, "door": "main"}).status_code == 403
    admin, csrf = sign_in(env.app, "admin")
    page = admin.post("/b/xh-001/bldg-12/unlock", data={"csrf": csrf, "door": "main"})
    assert page.status_code == 200 and "unlock sent" in page.text
    assert env.web.audit_rows()[0]["action"] == "unlock"


def test_alert_stream_and_ack(env: SimpleNamespace) -> None:
    alert = alert_payload("door_forced", "main", "raised", TOPICS)
    publish(env.consumer, "alert/door_forced", alert)
    client, csrf = sign_in(env.app, "staff")
    with client.stream("GET", "/alerts/stream?once=1&lang=zh") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        body = "".join(response.iter_text())
    data = json.loads(body.split("data: ", 1)[1].split("\n", 1)[0])
    assert data["id"] == alert["id"] and data["label"] == "门被强行打开"
    assert alert["id"] in client.get("/").text
    assert client.post(f"/alerts/{alert['id']}/ack", data={"csrf": csrf}).status_code == 200
    assert env.store.open_alerts() == []
    assert env.web.audit_rows()[0]["action"] == "ack"
    assert client.post(f"/alerts/{alert['id']}/ack", data={"csrf": csrf}).status_code == 404


def test_search_masks_a_typed_id_number(env: SimpleNamespace) -> None:
    enrol(env.consumer, "occ1", "A-101")
    client, _ = sign_in(env.app, "staff")
    assert "A-101" in client.get("/search?q=11010519491231002X").text
    assert "A-101" in client.get("/search?q=张").text
    assert "A-101" not in client.get("/search?q=B-9").text.split("<tbody>")[1]


def test_both_languages(env: SimpleNamespace) -> None:
    enrol(env.consumer, "occ1", "A-101")
    client, _ = sign_in(env.app, "staff")
    zh = client.get("/?lang=zh").text
    assert "楼栋" in zh and "实时告警" in zh and "待审批登记" in zh
    en = client.get("/?lang=en").text
    assert "Buildings" in en and "Live alerts" in en and "楼栋" not in en


def test_cli_web_user(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from station.cli import station_app

    db = str(tmp_path / "s.db")
    runner = CliRunner()
    result = runner.invoke(
        station_app, ["web-user", "wang", "--role", "station_admin", "--db", db, "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0 and "user wang added" in result.output, result.output
    bad = runner.invoke(station_app, ["web-user", "li", "--role", "landlord", "--db", db, "--password-stdin"], input=PASSWORD + "\n")
    assert bad.exit_code == 1
    assert WebStore(StationStore(db)).authenticate("wang", PASSWORD) == {"name": "wang", "role": "station_admin"}
