"""Both web UIs end to end in headless Chromium (Debian's chromium + chromedriver, Selenium).

One real broker, one real gateway (simulated RDM6300 reader and door), the landlord portal and the
station dashboard (with its consumer and signed commands) served by uvicorn on loopback ports, all
on one event loop in a background thread. A landlord signs in, enrols a tenant and binds the card
("tap the card now"); the station sees the unit yellow, approves, and the unit turns green; the
card then opens the door. A forced door appears in the live alert feed.

Screenshots go to ``$DOORGATE_ARTIFACTS`` (default: the test's tmp folder); with
``DOORGATE_UPDATE_SCREENSHOTS=1`` they are also copied to ``docs/screenshots/``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import uvicorn

from drivers.door import SimulatedDoor
from drivers.simulators.rdm6300 import Rdm6300Simulator
from gateway.app import Gateway, Outcome
from gateway.config import broker_settings, load_config, read_secret, station_public_key
from gateway.portal.app import create_app as create_portal
from gateway.portal.app import portal_secret
from rules.model import CredentialKind, Reason, Unit
from station.commands import Commander
from station.consumer import StationConsumer
from station.store import StationStore
from station.web.app import create_app as create_dashboard
from station.web.store import WebStore
from sync.contract import Topics
from sync.mqtt import BrokerSettings
from sync.portal_store import PortalStore
from sync.signing import generate_keypair, load_private_key
from sync.store import Store

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
HAVE_BROWSER = Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()
PASSWORD = "landlord pass"
TENANT_ID = "440524188001010014"
CARD = "67003BA86C"
REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.broker,
    pytest.mark.skipif(not HAVE_BROWSER, reason="needs Debian's chromium and chromedriver"),
]
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Stack:
    """Gateway, portal and dashboard on one event loop in a thread."""

    def __init__(self, gateway: Gateway, portal: Any, dashboard: Any) -> None:
        self.gateway = gateway
        self.portal_port, self.station_port = free_port(), free_port()
        self.servers = [
            uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
            for app, port in ((portal, self.portal_port), (dashboard, self.station_port))
        ]
        self.outcomes: list[Outcome] = []
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as err:  # noqa: BLE001 - reported to the test thread
            self.error = err
            self.ready.set()

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with self.gateway:
            self.gateway.callbacks.append(self.outcomes.append)
            run = asyncio.create_task(self.gateway.run())
            serving = [asyncio.create_task(s.serve()) for s in self.servers]
            async with asyncio.timeout(20):
                while not (
                    self.gateway.uplink.connected.is_set()
                    and self.gateway.health.get("entrance", {}).get("connected")
                    and all(s.started for s in self.servers)
                ):
                    await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # the downlink subscription follows the connection
            self.ready.set()
            await self._stop.wait()
            for server in self.servers:
                server.should_exit = True
            await asyncio.gather(*serving)
            run.cancel()

    def call(self, coroutine: Any, timeout: float = 10.0) -> Any:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def start(self) -> None:
        self.thread.start()
        assert self.ready.wait(30), "stack did not start"
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(20)


def settle(driver: Any, timeout: float) -> Any:
    """A wait that also rides out the old page going stale while the next one loads."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    return WebDriverWait(
        driver, timeout, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
    )


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or predicate}")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--disable-dev-shm-usage", "--window-size=1280,900", f"--user-data-dir={tmp_path / 'chrome'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def stack(tmp_path: Path, simulator: Rdm6300Simulator, broker: Any, gw: SimpleNamespace) -> Iterator[SimpleNamespace]:
    path = gw.write_config(tmp_path, simulator.port, broker.url)
    generate_keypair(tmp_path, "station")
    path.write_text(
        path.read_text().replace('approval = "local"', 'approval = "station"\npublic_key_file = "station.pub"'),
        encoding="utf-8",
    )
    config = load_config(path)
    key = read_secret(config.secrets.hash_key_file, path)
    topics = Topics(config.site.site, config.site.gateway)
    seed = Store.open(config.store.path, key)
    seed.add_unit(Unit("A-101", "A", 1, "101", 2, landlord="li"))
    seed.add_unit(Unit("A-102", "A", 1, "102", 1, landlord="li"))
    seed.add_unit(Unit("B-201", "B", 2, "201", 3, landlord="zhao"))
    PortalStore(seed.db).add_user("li", "landlord", PASSWORD)
    seed.close()

    station_store = StationStore(tmp_path / "station.db")
    WebStore(station_store).add_user("officer", "station_staff", PASSWORD)
    commander = Commander(
        BrokerSettings.from_url(broker.url, "station-cmd"),
        load_private_key((tmp_path / "station.key").read_bytes()),
        station_store,
    )
    consumer = StationConsumer(station_store, BrokerSettings.from_url(broker.url, "station-web"))
    dashboard = create_dashboard(station_store, commander=commander, consumer=consumer, poll=0.2)
    portal_store = Store.open(config.store.path, key, topics)
    portal = create_portal(config, portal_store, secret=portal_secret(key), tap_timeout=15)
    gateway = Gateway(
        config, hash_key=key, broker=broker_settings(config, path), config_path=path,
        station_key=station_public_key(config, path),
    )
    running = Stack(gateway, portal, dashboard)
    running.start()
    try:
        yield SimpleNamespace(
            stack=running, portal=portal, site=config.site.site, gateway=config.site.gateway,
            station_db=tmp_path / "station.db", simulator=simulator, portal_store=portal_store,
        )
    finally:
        running.stop()
        portal_store.close()
        station_store.close()


def shot(driver: Any, folder: Path, name: str, docs: str | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(folder / name))
    if docs and os.environ.get("DOORGATE_UPDATE_SCREENSHOTS") == "1":
        target = REPO / "docs" / "screenshots" / docs
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / name, target)


def sign_in(driver: Any, base: str, user: str, lang: str) -> None:
    driver.get(f"{base}/login?lang={lang}")
    driver.find_element(By.ID, "user").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "signin").click()
    WebDriverWait(driver, 10).until(lambda d: "/login" not in d.current_url)


def test_enrol_approve_open_in_the_browser(stack: SimpleNamespace, browser: Any, tmp_path: Path) -> None:
    artifacts = Path(os.environ.get("DOORGATE_ARTIFACTS") or tmp_path / "artifacts")
    portal, station = (
        f"http://127.0.0.1:{stack.stack.portal_port}",
        f"http://127.0.0.1:{stack.stack.station_port}",
    )
    # --- the landlord, in Chinese ---------------------------------------------------------
    sign_in(browser, portal, "li", "zh")
    assert "我的房间" in browser.page_source and "B-201" not in browser.page_source
    browser.find_element(By.ID, "unit-A-101").click()
    # "Read the ID card": the next ID card at the reader fills in the name and ID number.
    taps = stack.portal.state.portal.taps
    reader = threading.Thread(
        target=wait_for,
        args=(lambda: taps.offer("entrance", CredentialKind.IDCARD, TENANT_ID, name="王芳"),),
    )
    reader.start()
    browser.find_element(By.ID, "read-idcard-submit").click()
    reader.join(15)
    settle(browser, 10).until(lambda d: "王芳" in d.find_element(By.ID, "flash").text)
    assert browser.find_element(By.ID, "name").get_attribute("value") == "王芳"
    assert browser.find_element(By.ID, "id_number").get_attribute("value") == TENANT_ID
    browser.find_element(By.ID, "enrol-submit").click()
    settle(browser, 10).until(lambda d: "等待管理站审核" in d.find_element(By.ID, "flash").text)
    assert TENANT_ID not in browser.page_source and "440524********0014" in browser.page_source
    occupant = stack.portal_store.list_occupants("A-101")[0]

    # "Tap the card now": the daemon's TapHub gets the next read at the chosen reader.
    # The click returns once the page has loaded, so the card is "tapped" from another thread.
    tapper = threading.Thread(
        target=wait_for, args=(lambda: taps.offer("entrance", CredentialKind.IC, CARD),)
    )
    tapper.start()
    browser.find_element(By.CSS_SELECTOR, f"#tenant-{occupant.id} button.tap").click()
    tapper.join(15)
    settle(browser, 10).until(lambda d: "******A86C" in d.find_element(By.ID, "flash").text)
    assert CARD not in browser.page_source
    shot(browser, artifacts, "portal-unit.png", "portal.png")
    browser.get(f"{portal}/units")
    assert browser.find_element(By.ID, "unit-A-101").get_attribute("data-colour") == "yellow"

    # --- the station, in English ----------------------------------------------------------
    watcher = StationStore(stack.station_db)
    wait_for(watcher.enrolments, what="the enrolment at the station")
    sign_in(browser, station, "officer", "en")
    building = f"{station}/b/{stack.site}/{stack.gateway}"
    browser.get(building)
    assert browser.find_element(By.ID, "cell-A-101").get_attribute("data-colour") == "yellow"

    # A forced door arrives in the live feed (server-sent events) without reloading.
    door = stack.stack.gateway.doors["main"]
    assert isinstance(door, SimulatedDoor)
    stack.stack.loop.call_soon_threadsafe(door.open_contact)
    settle(browser, 15).until(
        lambda d: "door forced open" in d.find_element(By.ID, "alert-feed").text
    )
    stack.stack.loop.call_soon_threadsafe(door.close_contact)
    # The unit is red, and stays red after the door closed, until someone acknowledges it.
    browser.get(building)
    settle(browser, 10).until(
        lambda d: d.find_element(By.ID, "cell-A-101").get_attribute("data-colour") == "red"
    )
    assert "door main forced open" in browser.find_element(By.ID, "cell-A-101").text
    shot(browser, artifacts, "dashboard-forced-en.png", "dashboard-forced-en.png")
    browser.find_element(By.CSS_SELECTOR, "#alert-feed li button").click()
    settle(browser, 10).until(lambda d: d.find_elements(By.ID, "no-alerts"))
    assert browser.find_element(By.ID, "cell-A-101").get_attribute("data-colour") == "yellow"

    browser.get(f"{station}/approvals")
    browser.find_element(By.CSS_SELECTOR, f"#enrol-{occupant.id} button.approve").click()
    flash = settle(browser, 20).until(lambda d: d.find_element(By.ID, "flash"))
    assert "approved; gateway replied applied" in flash.text, flash.text
    browser.get(building)
    assert browser.find_element(By.ID, "cell-A-101").get_attribute("data-colour") == "green"
    assert "registered 1 / capacity 2" in browser.find_element(By.ID, "cell-A-101").text
    shot(browser, artifacts, "dashboard-building-en.png")

    # --- the card now opens the door, and the portal shows the tenant approved -------------
    before = len(stack.stack.outcomes)
    stack.stack.call(stack.simulator.tap(0x003BA86C, version=0x67, repeats=1))
    wait_for(lambda: len(stack.stack.outcomes) > before, what="the door decision")
    assert stack.stack.outcomes[-1].decision.reasons == (Reason.GRANTED,)
    browser.get(f"{portal}/units?lang=en")
    assert browser.find_element(By.ID, "unit-A-101").get_attribute("data-colour") == "green"
    browser.get(f"{portal}/units/A-101")
    assert "Recent entries" in browser.page_source and "allowed" in browser.page_source
    shot(browser, artifacts, "portal-unit-en.png")
    # Back at the station, in Chinese: the entry is counted in the hourly chart.
    browser.get(f"{building}?lang=zh")
    assert "近 24 小时每小时进入人次" in browser.page_source
    assert browser.find_element(By.ID, "cell-A-101").get_attribute("data-colour") == "green"
    assert "登记 1 / 限住 2" in browser.find_element(By.ID, "cell-A-101").text
    shot(browser, artifacts, "dashboard-building.png", "dashboard.png")
    watcher.close()
