"""The landlord portal over Starlette's TestClient: sign-in, CSRF, rate limit, isolation, audit."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

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
