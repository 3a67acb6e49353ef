"""The landlord portal over Starlette's TestClient: sign-in, CSRF, rate limit, isolation, audit."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.config import load_config, read_secret
from gateway.portal.app import create_app, portal_secret
from gateway.portal.taps import TapHub
from rules.model import CredentialKind, Unit
from sync.contract import Topics
from sync.portal_store import PortalStore
from sync.store import Store
from sync.webauth import RateLimiter, hash_password, verify_password

ID_1 = "11010519491231002X"
ID_2 = "440524188001010014"
PASSWORD = "correct horse"


@pytest.fixture
def env(tmp_path: Path, gw: SimpleNamespace) -> Iterator[SimpleNamespace]:
    path = gw.write_config(tmp_path, "/dev/null")
    config = load_config(path)
    key = read_secret(config.secrets.hash_key_file, path)
    store = Store.open(config.store.path, key, Topics(config.site.site, config.site.gateway))
    store.add_unit(Unit("A-101", "A", 1, "101", 2, landlord="li"))
    store.add_unit(Unit("A-102", "A", 1, "102", 1, landlord="li"))
    store.add_unit(Unit("B-201", "B", 2, "201", 2, landlord="zhao"))
    accounts = PortalStore(store.db)
    accounts.add_user("li", "landlord", PASSWORD)
    accounts.add_user("zhao", "landlord", PASSWORD)
    accounts.add_user("staff", "station_staff", PASSWORD)
    accounts.add_user("admin", "station_admin", PASSWORD)
    taps = TapHub()
    app = create_app(
        config,
        store,
        secret=portal_secret(key),
        taps=taps,
        tap_timeout=3,
        limiter=RateLimiter(limit=3, window=60),
    )
    yield SimpleNamespace(app=app, store=store, accounts=accounts, taps=taps, config=config)
    store.close()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, html
    return match.group(1)


def sign_in(app: object, user: str, password: str = PASSWORD) -> tuple[TestClient, str]:
    client = TestClient(app, follow_redirects=True)  # type: ignore[arg-type]
    page = client.get("/login?lang=en")
    response = client.post(
        "/login", data={"user": user, "password": password, "csrf": csrf_of(page.text)}
    )
    assert response.status_code == 200, response.text
    return client, csrf_of(response.text)


def test_passwords_are_salted_scrypt() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first != second and first.startswith("scrypt$") and PASSWORD not in first
    assert verify_password(PASSWORD, first) and not verify_password("wrong pass", first)
    with pytest.raises(ValueError, match="at least"):
        hash_password("short")


def test_sign_in_defaults_to_chinese_and_switches(env: SimpleNamespace) -> None:
    client = TestClient(env.app)
    page = client.get("/login")
    assert "登录" in page.text and "用户名" in page.text
    english = client.get("/login?lang=en")
    assert "Sign in" in english.text and "登录" not in english.text
    assert client.get("/login").text.count("Sign in") >= 1  # the cookie remembers


def test_login_and_csrf(env: SimpleNamespace) -> None:
    client = TestClient(env.app, follow_redirects=False)
    assert client.get("/units").headers["location"] == "/login"
    client.get("/login")
    refused = client.post("/login", data={"user": "li", "password": PASSWORD})
    assert refused.status_code == 403
    refused = client.post("/login", data={"user": "li", "password": PASSWORD, "csrf": "0" * 64})
    assert refused.status_code == 403
    client, csrf = sign_in(env.app, "li")
    # Signed in: a form without the session's token is still refused.
    response = client.post("/units/A-101/enrol", data={"name": "x", "csrf": "f" * 64})
    assert response.status_code == 403
    assert client.post("/logout", data={"csrf": csrf}).status_code == 200
    assert "/login" in str(client.get("/units").url)


def test_login_rate_limit(env: SimpleNamespace) -> None:
    client = TestClient(env.app)
    csrf = csrf_of(client.get("/login?lang=en").text)
    for _ in range(3):
        bad = client.post("/login", data={"user": "li", "password": "guess1234", "csrf": csrf})
        assert bad.status_code == 401 and "Wrong user name" in bad.text
    blocked = client.post("/login", data={"user": "li", "password": PASSWORD, "csrf": csrf})
    assert blocked.status_code == 429 and "Too many" in blocked.text


def test_landlord_sees_only_own_units(env: SimpleNamespace) -> None:
    other = env.store.add_occupant("B-201", "赵六", ID_2, __import__("datetime").date.today(), None)
    client, csrf = sign_in(env.app, "li")
    page = client.get("/units")
    assert "A-101" in page.text and "A-102" in page.text and "B-201" not in page.text
    assert client.get("/units/B-201").status_code == 404
    assert client.post(f"/occupants/{other.id}/move-out", data={"csrf": csrf}).status_code == 404
    staff, staff_csrf = sign_in(env.app, "staff")
    assert "B-201" in staff.get("/units").text
    # Station staff may look but not change.
    assert staff.post("/units/B-201/enrol", data={"csrf": staff_csrf}).status_code == 403


def test_enrol_tap_renew_move_out_with_audit(env: SimpleNamespace) -> None:
    client, csrf = sign_in(env.app, "li")
    form = {"name": "张伟", "id_number": ID_1, "valid_from": "2026-01-01", "valid_to": "", "csrf": csrf}
    page = client.post("/units/A-101/enrol", data=form)
    assert page.status_code == 200 and "waiting for the station" in page.text
    assert ID_1 not in page.text and "110105********002X" in page.text
    occupant = env.store.list_occupants("A-101")[0]
    assert 'data-colour="yellow"' in client.get("/units").text
    assert any(r.topic == "enrolment/request" for r in env.store.outbox_batch())

    bad = client.post("/units/A-101/enrol", data={**form, "id_number": "110105194912310021"})
    assert bad.status_code == 400

    def feed() -> None:
        deadline = time.monotonic() + 3
        while not env.taps.offer("entrance", CredentialKind.IC, "67003B51C6"):
            assert time.monotonic() < deadline
            time.sleep(0.02)

    feeder = threading.Thread(target=feed)
    feeder.start()
    page = client.post(f"/occupants/{occupant.id}/card", data={"reader": "entrance", "csrf": csrf})
    feeder.join()
    assert page.status_code == 200 and "******51C6" in page.text and "67003B51C6" not in page.text
    assert env.store.resolve_card(CredentialKind.IC, "67003B51C6")[1] is not None

    page = client.post(f"/occupants/{occupant.id}/renew", data={"valid_to": "2027-12-31", "csrf": csrf})
    assert page.status_code == 200 and "2027-12-31" in page.text
    page = client.post(f"/occupants/{occupant.id}/move-out", data={"csrf": csrf})
    assert page.status_code == 200
    assert env.store.list_cards(occupant.id)[0]["status"] == "revoked"
    actions = [a["action"] for a in env.accounts.audit_rows(["A-101"])]
    assert actions == ["move_out", "renew", "card", "enrol"]
    assert all(a["actor"] == "li" for a in env.accounts.audit_rows(["A-101"]))


def test_tap_times_out(env: SimpleNamespace) -> None:
    env.app.state.portal.tap_timeout = 0.2
    client, csrf = sign_in(env.app, "li")
    occupant = env.store.add_occupant("A-101", "王芳", ID_2, __import__("datetime").date.today(), None)
    page = client.post(f"/occupants/{occupant.id}/card", data={"reader": "entrance", "csrf": csrf})
    assert page.status_code == 408 and "No card" in page.text


def test_local_approval_is_role_bound(env: SimpleNamespace) -> None:
    occupant = env.store.add_occupant("A-101", "王芳", ID_2, __import__("datetime").date.today(), None)
    landlord, csrf = sign_in(env.app, "li")
    # approval = "local" in the test config: the landlord may approve.
    assert landlord.post(f"/occupants/{occupant.id}/approve", data={"csrf": csrf}).status_code == 200
    assert env.store.get_occupant(occupant.id).status.value == "approved"
    assert env.accounts.audit_rows(["A-101"])[0]["action"] == "approve"
    env.app.state.portal.config = env.config.model_copy(
        update={"station": env.config.station.model_copy(update={"approval": "station"})}
    )
    second = env.store.add_occupant("A-102", "赵六", ID_1, __import__("datetime").date.today(), None)
    assert landlord.post(f"/occupants/{second.id}/approve", data={"csrf": csrf}).status_code == 403
    admin, admin_csrf = sign_in(env.app, "admin")
    assert admin.post(f"/occupants/{second.id}/approve", data={"csrf": admin_csrf}).status_code == 200


def test_self_declaration_by_qr_link(env: SimpleNamespace) -> None:
    client, _ = sign_in(env.app, "li")
    page = client.get("/units/A-102/qr")
    link = re.search(r'id="declare-url">([^<]+)<', page.text)
    assert link, page.text
    url = link.group(1).replace("&amp;", "&")
    tenant = TestClient(env.app)
    assert tenant.get("/declare/A-102?k=wrong").status_code == 404
    form_page = tenant.get(url)
    assert form_page.status_code == 200
    done = tenant.post(
        url,
        data={"name": "孙七", "id_number": ID_2, "valid_from": "2026-01-01", "csrf": csrf_of(form_page.text)},
    )
    assert done.status_code == 200 and 'id="declared"' in done.text
    assert [o.name for o in env.store.list_occupants("A-102")] == ["孙七"]
    assert env.accounts.audit_rows(["A-102"])[0]["action"] == "declare"


def test_every_page_in_both_languages(env: SimpleNamespace) -> None:
    env.store.add_occupant("A-101", "张伟", ID_1, __import__("datetime").date.today(), None)
    client, _ = sign_in(env.app, "li")
    for lang, words in (("zh", ["我的房间", "住户", "登记新住户"]), ("en", ["My units", "Tenants", "Enrol a tenant"])):
        text = client.get(f"/units?lang={lang}").text + client.get("/units/A-101").text
        for word in words:
            assert word in text, (lang, word)
    assert "操作记录" in client.get("/audit?lang=zh").text


def test_cli_adds_a_user_then_serves_nothing_raw(tmp_path: Path, gw: SimpleNamespace) -> None:
    from typer.testing import CliRunner

    from gateway.cli_portal import portal_app

    path = gw.write_config(tmp_path, "/dev/null")
    runner = CliRunner()
    args = ["user", "add", "li", "--role", "landlord", "--config", str(path), "--password-stdin"]
    result = runner.invoke(portal_app, args, input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert "user li added" in result.output
    bad = runner.invoke(portal_app, [*args[:3], "--role", "king", *args[5:]], input=PASSWORD + "\n")
    assert bad.exit_code == 1
    config = load_config(path)
    store = Store.open(config.store.path, read_secret(config.secrets.hash_key_file, path))
    assert PortalStore(store.db).authenticate("li", PASSWORD) == {"name": "li", "role": "landlord"}
    store.close()


# --- ID cards, camera, visitor passes, alerts, wrong matches, declarations -------------------

VISITOR_ID = "110101199003074477"
FACES = Path(__file__).parent.parent / "fixtures" / "faces"


def feed_tap(taps: TapHub, kind: CredentialKind, value: str, name: str | None = None) -> threading.Thread:
    """Offer one read at "entrance" as soon as a portal request waits for it."""

    def feed() -> None:
        deadline = time.monotonic() + 3
        while not taps.offer("entrance", kind, value, name=name):
            assert time.monotonic() < deadline
            time.sleep(0.02)

    thread = threading.Thread(target=feed)
    thread.start()
    return thread


@pytest.fixture(scope="module")
def tenant_face() -> Any:
    """A real encoding and crop of a fixture photo (computed once with the real engine)."""
    from drivers.face import analysis
    from drivers.face.service import crop_jpeg

    image = analysis.read_image(FACES / "obama.jpg")
    face = analysis.analyse_photo(image)
    return SimpleNamespace(encoding=face.encoding, quality=face.quality.score,
                           crop=crop_jpeg(image, face.bbox))


def test_tap_keeps_the_card_number_out_of_its_repr() -> None:
    from gateway.portal.taps import Tap

    tap = Tap("entrance", CredentialKind.IDCARD, ID_1, "张伟")
    assert ID_1 not in repr(tap) and "张伟" not in repr(tap) and ID_1 not in str(tap)
    assert tap.uid_hex == tap.value == ID_1
    assert TapHub().offer("entrance", CredentialKind.IC, "67003B51C6") is False  # nobody waits


def test_id_card_fills_the_enrol_form_and_binds_as_idcard(env: SimpleNamespace) -> None:
    client, csrf = sign_in(env.app, "li")
    feeder = feed_tap(env.taps, CredentialKind.IDCARD, ID_1, "张伟")
    page = client.post("/units/A-101/read-idcard", data={"reader": "entrance", "csrf": csrf})
    feeder.join()
    assert page.status_code == 200 and "ID card read: 张伟" in page.text
    assert f'value="{ID_1}"' in page.text and 'value="张伟"' in page.text
    assert page.headers["cache-control"] == "no-store"
    assert env.store.list_occupants("A-101") == []  # nothing stored before submit
    assert env.accounts.audit_rows(["A-101"]) == []
    # An IC card at that moment is not an ID card.
    feeder = feed_tap(env.taps, CredentialKind.IC, "67003B51C6")
    page = client.post("/units/A-101/read-idcard", data={"reader": "entrance", "csrf": csrf})
    feeder.join()
    assert page.status_code == 400 and "not a resident ID card" in page.text
    assert client.post("/units/A-101/read-idcard", data={"reader": "nope", "csrf": csrf}).status_code == 400

    occupant = env.store.add_occupant("A-101", "张伟", ID_1, __import__("datetime").date.today(), None)
    # "Tap the card now" with someone else's ID card is refused...
    feeder = feed_tap(env.taps, CredentialKind.IDCARD, ID_2, "王芳")
    page = client.post(f"/occupants/{occupant.id}/card", data={"reader": "entrance", "csrf": csrf})
    feeder.join()
    assert page.status_code == 400 and "is not this tenant" in page.text
    # ...their own is bound as an idcard credential (masked), twice is harmless.
    for _ in range(2):
        feeder = feed_tap(env.taps, CredentialKind.IDCARD, ID_1, "张伟")
        page = client.post(f"/occupants/{occupant.id}/card", data={"reader": "entrance", "csrf": csrf})
        feeder.join()
        assert page.status_code == 200 and "110105********002X verified" in page.text
    cards = env.store.list_cards(occupant.id)
    assert [(c["kind"], c["masked"], c["status"]) for c in cards] == [("idcard", "110105********002X", "active")]
    assert ID_1 not in page.text
    assert env.accounts.audit_rows(["A-101"])[0]["action"] == "idcard"
    client.post(f"/occupants/{occupant.id}/move-out", data={"csrf": csrf})
    assert env.store.list_cards(occupant.id)[0]["status"] == "revoked"


def test_look_at_the_camera_then_use_the_face(env: SimpleNamespace, tenant_face: Any) -> None:
    from drivers.face.errors import FaceError
    from drivers.face.types import FaceCapture
    from sync import faces as face_db

    results: list[FaceCapture] = [
        FaceCapture(True, None, tenant_face.crop, tenant_face.encoding, tenant_face.quality),
        FaceCapture(False, "no_face"),
    ]
    calls: list[str] = []

    async def door() -> FaceCapture:
        calls.append("door")
        return results.pop(0)

    async def broken() -> FaceCapture:
        raise FaceError("camera process gone")

    portal = env.app.state.portal
    portal.cameras = {"door": door}
    occupant = env.store.add_occupant("A-101", "张伟", ID_1, __import__("datetime").date.today(), None)
    client, csrf = sign_in(env.app, "li")
    unit = client.get("/units/A-101").text
    assert f'id="look-{occupant.id}"' in unit and '<select name="camera"' not in unit  # one camera

    page = client.post(f"/occupants/{occupant.id}/capture", data={"camera": "door", "csrf": csrf})
    assert page.status_code == 200 and "Face usable (quality" in page.text
    assert 'src="data:image/jpeg;base64,' in page.text and page.headers["cache-control"] == "no-store"
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert token and list(portal.captures) == [token.group(1)]
    assert face_db.template_count(env.store.db, occupant.id) == 0  # nothing stored yet

    # Another landlord cannot use it; the owner can, once.
    zhao, zhao_csrf = sign_in(env.app, "zhao")
    assert zhao.post(f"/occupants/{occupant.id}/use-face", data={"token": token.group(1), "csrf": zhao_csrf}).status_code == 404
    saved = client.post(f"/occupants/{occupant.id}/use-face", data={"token": token.group(1), "csrf": csrf})
    assert saved.status_code == 200 and "Face template saved for 张伟 (1 in all)" in saved.text
    assert face_db.template_count(env.store.db, occupant.id) == 1 and portal.captures == {}
    matrix, ids, negative = face_db.load_templates(env.store.db)
    assert ids == [occupant.id] and negative == [False]
    assert float(abs(matrix[0] - tenant_face.encoding).max()) == 0.0
    again = client.post(f"/occupants/{occupant.id}/use-face", data={"token": token.group(1), "csrf": csrf})
    assert again.status_code == 410 and "expired" in again.text
    assert env.accounts.audit_rows(["A-101"])[0]["action"] == "face"

    # A refused frame says why, in either language.
    bad = client.post(f"/occupants/{occupant.id}/capture?lang=zh", data={"camera": "door", "csrf": csrf})
    assert bad.status_code == 422 and "没有找到人脸" in bad.text and "data:image" not in bad.text
    portal.cameras = {"door": door, "lobby": broken}
    assert '<select name="camera"' in client.get("/units/A-101").text
    down = client.post(f"/occupants/{occupant.id}/capture?lang=en", data={"camera": "lobby", "csrf": csrf})
    assert down.status_code == 422 and "the camera is unavailable" in down.text
    assert client.post(f"/occupants/{occupant.id}/capture", data={"camera": "attic", "csrf": csrf}).status_code == 400
    assert calls == ["door", "door"]

    # Captures expire after five minutes (kept in memory only).
    results.append(FaceCapture(True, None, tenant_face.crop, tenant_face.encoding, tenant_face.quality))
    page = client.post(f"/occupants/{occupant.id}/capture", data={"camera": "door", "csrf": csrf})
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert token
    held = portal.captures[token.group(1)]
    portal.captures[token.group(1)] = type(held)(**{**{f: getattr(held, f) for f in held.__slots__}, "expires": 0.0})
    late = client.post(f"/occupants/{occupant.id}/use-face", data={"token": token.group(1), "csrf": csrf})
    assert late.status_code == 410 and portal.captures == {}
    # Station staff only look.
    staff, staff_csrf = sign_in(env.app, "staff")
    assert f'id="look-{occupant.id}"' not in staff.get("/units/A-101").text
    assert staff.post(f"/occupants/{occupant.id}/capture", data={"camera": "door", "csrf": staff_csrf}).status_code == 403


def _local(delta_hours: float) -> str:
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    moment = datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(hours=delta_hours)
    return moment.strftime("%Y-%m-%dT%H:%M")


def test_visitor_pass_opens_the_door_through_the_real_rules(env: SimpleNamespace) -> None:
    import asyncio
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from gateway.rules_runtime import RulesRuntime
    from rules.model import AccessRequest, Direction, Reason
    from sync.store import AsyncStore

    client, csrf = sign_in(env.app, "li")
    form = {"name": "访客李", "id_number": VISITOR_ID, "valid_from": _local(-1), "valid_to": _local(2),
            "max_uses": "1", "csrf": csrf}
    for bad, words in (({"id_number": "110101199003074478"}, "check character"),
                       ({"valid_to": _local(-2)}, "before it starts"),
                       ({"valid_from": "soon"}, "Not a valid date"),
                       ({"max_uses": "-1"}, "positive whole number")):
        refused = client.post("/units/A-101/passes", data={**form, **bad})
        assert refused.status_code == 400 and words in refused.text, words
    page = client.post("/units/A-101/passes", data=form)
    assert page.status_code == 200 and "Visitor pass issued to 访*" in page.text
    assert VISITOR_ID not in page.text and "110101********4477" in page.text
    row = env.accounts.passes("A-101")[0]
    assert row["max_uses"] == 1 and row["valid_from"].endswith("+08:00")
    assert env.accounts.audit_rows(["A-101"])[0]["action"] == "pass_issue"

    async def rules_view() -> tuple[list[tuple[bool, tuple[Reason, ...]]], Any]:
        runtime = RulesRuntime(env.config, AsyncStore(env.store))
        await runtime.reload_site()
        verdicts = []
        for _ in range(2):
            at = datetime.now(ZoneInfo("Asia/Shanghai"))
            request = AccessRequest("main", Direction.IN, CredentialKind.IDCARD, at,
                                    event_id=f"e{len(verdicts)}",
                                    id_hash=env.store.hash_id_number(VISITOR_ID))
            decision = runtime.step(request, at).decision
            assert decision is not None
            verdicts.append((decision.allowed, decision.reasons))
        await runtime.reload_site()  # writes the pass's uses back for the portal
        return verdicts, runtime

    verdicts, runtime = asyncio.run(rules_view())
    assert verdicts[0] == (True, (Reason.VISITOR_PASS,))
    assert verdicts[1][0] is False and Reason.VISITOR_PASS_USED_UP in verdicts[1][1]
    assert env.accounts.passes("A-101")[0]["uses"] == 1
    unit = client.get("/units/A-101").text
    assert f'id="pass-{row["id"]}" data-state="used_up"' in unit

    revoked = client.post(f"/passes/{row['id']}/revoke", data={"csrf": csrf})
    assert revoked.status_code == 200 and 'data-state="revoked"' in revoked.text
    assert env.accounts.audit_rows(["A-101"])[0]["action"] == "pass_revoke"

    async def after_revoke() -> tuple[bool, tuple[Reason, ...]]:
        await runtime.reload_site()
        at = datetime.now(ZoneInfo("Asia/Shanghai"))
        request = AccessRequest("main", Direction.IN, CredentialKind.IDCARD, at, event_id="e9",
                                id_hash=env.store.hash_id_number(VISITOR_ID))
        decision = runtime.step(request, at).decision
        assert decision is not None
        return decision.allowed, decision.reasons

    allowed, reasons = asyncio.run(after_revoke())
    assert not allowed and Reason.VISITOR_PASS_REVOKED in reasons
    # Someone else's unit, station staff: no.
    zhao, zhao_csrf = sign_in(env.app, "zhao")
    assert zhao.post(f"/passes/{row['id']}/revoke", data={"csrf": zhao_csrf}).status_code == 404
    staff, staff_csrf = sign_in(env.app, "staff")
    assert staff.post("/units/A-101/passes", data={**form, "csrf": staff_csrf}).status_code == 403


def test_unit_page_lists_its_recent_alerts(env: SimpleNamespace) -> None:
    from sync.contract import Topics, alert_payload, dumps

    topics = Topics(env.config.site.site, env.config.site.gateway)
    occupant = env.store.add_occupant("A-101", "张伟", ID_1, __import__("datetime").date.today(), None)
    for kind, key, unit in (("overcrowding", "A-101", "A-101"), ("vacancy", occupant.id, None),
                            ("overcrowding", "A-101:approved", None), ("door_forced", "main", None),
                            ("overcrowding", "B-201", "B-201")):
        payload = alert_payload(kind, key, "raised", topics, unit=unit, counts={"persons": 3})
        env.store.enqueue(payload["id"], f"alert/{kind}", dumps(payload))
    env.store.outbox_delete([r.seq for r in env.store.outbox_batch(1000)])  # sent: still listed
    client, _ = sign_in(env.app, "li")
    page = client.get("/units/A-101?lang=en").text
    section = page.split('id="alerts"')[1].split("</table>")[0]
    assert section.count('class="alert raised"') == 3
    assert "overcrowding" in section and "not seen for a long time" in section
    assert "door forced" not in section and "B-201" not in section
    assert "超员居住" in client.get("/units/A-101?lang=zh").text


def test_not_this_person_marks_a_wrong_face_match(env: SimpleNamespace) -> None:
    from datetime import UTC, datetime

    from sync import faces as face_db
    from sync.contract import AccessRecord

    occupant = env.store.add_occupant("A-101", "张伟", ID_1, __import__("datetime").date.today(), None)
    record = AccessRecord("01FACEENTRY", datetime.now(UTC), "main", "in", "face", occupant.id, "A-101",
                          None, "allow", ("granted",))
    env.store.record_access(record, "event/access", "{}")
    client, csrf = sign_in(env.app, "li")
    page = client.get("/units/A-101?lang=en").text
    assert 'id="wrong-01FACEENTRY"' in page and 'enctype="multipart/form-data"' in page
    url = f"/occupants/{occupant.id}/wrong-face"
    photo = (FACES / "biden.jpg").read_bytes()
    files = {"photo": ("lookalike.jpg", photo, "image/jpeg")}
    assert client.post(url, data={"event": "01FACEENTRY"}, files=files).status_code == 403  # no CSRF
    done = client.post(url, data={"event": "01FACEENTRY", "csrf": csrf}, files=files)
    assert done.status_code == 200 and "no longer counts as 张伟" in done.text
    _, ids, negative = face_db.load_templates(env.store.db)
    assert ids == [occupant.id] and negative == [True]
    audit = env.accounts.audit_rows(["A-101"])[0]
    assert audit["action"] == "face_wrong" and audit["detail"] == "event 01FACEENTRY"
    bad = client.post(url, data={"csrf": csrf}, files={"photo": ("x.jpg", b"not a photo", "image/jpeg")})
    assert bad.status_code == 422 and "the picture is unreadable" in bad.text
    none = client.post(url, data={"csrf": csrf}, files={"photo": ("x.jpg", b"", "image/jpeg")})
    assert none.status_code == 400 and "Choose a photo" in none.text
    assert len(face_db.load_templates(env.store.db)[1]) == 1


def test_declarations_wait_for_the_landlord(env: SimpleNamespace) -> None:
    client, csrf = sign_in(env.app, "li")
    qr = client.get("/units/A-101/qr")
    assert "<svg" in qr.text and 'id="declare-qr"' in qr.text and "<path" in qr.text
    url = re.search(r'id="declare-url">([^<]+)<', qr.text).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    tenant = TestClient(env.app)
    for name, number in (("孙七", ID_1), ("周八", ID_2)):
        csrf_t = csrf_of(tenant.get(url).text)
        assert tenant.post(url, data={"name": name, "id_number": number, "valid_from": "2026-01-01",
                                      "csrf": csrf_t}).status_code == 200
    first, second = sorted(env.store.list_occupants("A-101"), key=lambda o: o.name != "孙七")
    page = client.get("/units/A-101?lang=en").text
    assert f'id="declared-{first.id}"' in page and "Declared by the tenant" in page

    staff, staff_csrf = sign_in(env.app, "staff")
    assert staff.post(f"/occupants/{first.id}/confirm", data={"csrf": staff_csrf}).status_code == 403
    done = client.post(f"/occupants/{first.id}/confirm", data={"csrf": csrf})
    assert done.status_code == 200 and "now bind their card" in done.text
    assert f'id="declared-{first.id}"' not in done.text and f'id="declared-{second.id}"' in done.text
    again = client.post(f"/occupants/{first.id}/confirm", data={"csrf": csrf})
    assert again.status_code == 409 and "not an unconfirmed self-declaration" in again.text

    requests = [r for r in env.store.outbox_batch(1000) if r.topic == "enrolment/request"]
    assert len(requests) == 2
    gone = client.post(f"/occupants/{second.id}/reject", data={"csrf": csrf})
    assert gone.status_code == 200 and "declaration rejected" in gone.text
    assert [o.id for o in env.store.list_occupants("A-101")] == [first.id]
    assert [r for r in env.store.outbox_batch(1000) if r.topic == "enrolment/request"
            and second.id in r.payload] == []
    actions = [a["action"] for a in env.accounts.audit_rows(["A-101"])]
    assert actions[:2] == ["reject_declaration", "confirm"]
    assert client.post(f"/occupants/{first.id}/reject", data={"csrf": csrf}).status_code == 409
    # An enrolment made by the landlord is not a declaration.
    own = env.store.add_occupant("A-102", "吴九", "440524188001010030", __import__("datetime").date.today(), None)
    assert client.post(f"/occupants/{own.id}/reject", data={"csrf": csrf}).status_code == 409


def test_new_sections_in_both_languages(env: SimpleNamespace) -> None:
    client, _ = sign_in(env.app, "li")
    zh = client.get("/units/A-101?lang=zh").text
    en = client.get("/units/A-101?lang=en").text
    for word in ("访客通行证", "发放访客通行证", "最近告警", "读取身份证"):
        assert word in zh, word
    for word in ("Visitor passes", "Issue a visitor pass", "Recent alerts", "Read the ID card"):
        assert word in en and word not in zh, word
    import gateway.portal.i18n as portal_i18n
    from rules.i18n import keys

    for key in portal_i18n._PAIRS:
        assert key in keys()


def test_unit_colours_come_from_the_rules_state_the_daemon_saved(env: SimpleNamespace) -> None:
    import json

    from gateway.rules_runtime import STATE_KEY
    from rules.alerts import AlertKind, Episodes
    from rules.engine import RulesState

    episodes = Episodes(frozenset({(AlertKind.OVERCROWDING, "A-101")}))
    state = RulesState(episodes=episodes)
    env.store.set_state(STATE_KEY, json.dumps(state.to_dict(), ensure_ascii=False))
    client, _ = sign_in(env.app, "li")
    units = client.get("/units?lang=en").text
    cell = units.split('id="unit-A-101"')[1].split("</a>")[0]
    assert 'data-colour="red"' in cell and "overcrowded tonight" in cell
    vacant = units.split('id="unit-A-102"')[1].split("</a>")[0]
    assert 'data-colour="grey"' in vacant and 'class="reason"' not in vacant
    page = client.get("/units/A-101?lang=zh").text
    status = page.split('id="unit-status"')[1].split("</p>")[0]
    assert 'data-colour="red"' in status and "今晚超员" in status
    assert 'data-colour="grey"' in client.get("/units/A-102").text
    # A state the portal cannot read (a newer daemon, a broken file): colours without it.
    env.store.set_state(STATE_KEY, "{not json")
    assert 'data-colour="red"' not in client.get("/units").text


def test_unit_colours_inside_the_daemon_are_its_live_ones(env: SimpleNamespace) -> None:
    from rules.colour import Colour, UnitStatus

    live = {
        "A-101": UnitStatus("A-101", Colour.YELLOW, ("pending:1", "door_held:main"), 0, 1, 2, 0),
        "A-102": UnitStatus("A-102", Colour.RED, ("door_forced:main",), 1, 0, 1, 1),
    }
    app = create_app(env.config, env.store, secret=b"k" * 32, unit_statuses=lambda: live)
    client, _ = sign_in(app, "li")
    units = client.get("/units?lang=en").text
    first = units.split('id="unit-A-101"')[1].split("</a>")[0]
    assert 'data-colour="yellow"' in first
    assert "1 awaiting approval" in first and "door main held open" in first
    second = units.split('id="unit-A-102"')[1].split("</a>")[0]
    assert 'data-colour="red"' in second and "door main forced open" in second
    page = client.get("/units/A-102?lang=zh").text
    assert "门 main 被强行打开" in page.split('id="unit-status"')[1].split("</p>")[0]
