"""TLS with client certificates and the per-gateway ACL, against a real Mosquitto.

The broker runs the shipped ``deploy/mosquitto-tls.conf`` (paths and port rewritten) with the
shipped ``deploy/mosquitto.acl``, certificates come from ``sync.pki.write_bundle`` (what
``deploy/make-certs.py`` writes), and every client is the project's own ``make_client``.

"Never receives" is proven without sleeping: the forbidden message is published (and
acknowledged) first, then a permitted sentinel; the observer waits for the sentinel, by which
time the broker would have routed the forbidden message ahead of it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import aiomqtt
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from sync.contract import PREFIX, Topics
from sync.ha_discovery import HaDevice, component_discovery, device_discovery
from sync.mqtt import BrokerSettings, make_client
from sync.pki import Bundle, write_bundle

MOSQUITTO = (
    None
    if os.environ.get("DOORGATE_TEST_BROKER") == "amqtt"
    else shutil.which("mosquitto")
    or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
)
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"

pytestmark = [
    pytest.mark.broker,
    pytest.mark.timeout(15),
    pytest.mark.skipif(
        MOSQUITTO is None, reason="mosquitto is not installed (TLS/ACL tests need Mosquitto)"
    ),
]

A = Topics("s1", "gA")
B = Topics("s1", "gB")
STEP = 5.0  # seconds any single expectation may take
# A certificate the broker rejects after a TLS 1.3 handshake surfaces in aiomqtt only as a
# CONNACK that never comes ("Operation timed out"), so a refusal costs this long.
REFUSAL_WAIT = 2.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class TlsBroker:
    """A Mosquitto with the shipped TLS config on a free loopback port."""

    port: int
    pki: Bundle
    log: Path

    def settings(self, who: str, client_id: str, **changes: object) -> BrokerSettings:
        """Settings for a party of the bundle: ``station``, ``homeassistant``, ``s1/gA``..."""
        if "/" in who:
            site, gateway = who.split("/")
            folder, stem = self.pki.gateways[(site, gateway)], "gateway"
        else:
            folder, stem = getattr(self.pki, who), who
        base = BrokerSettings(
            host="127.0.0.1",
            port=self.port,
            client_id=client_id,
            ca_file=folder / "ca.crt",
            cert_file=folder / f"{stem}.crt",
            key_file=folder / f"{stem}.key",
            keepalive=10,
        )
        return replace(base, **changes)  # type: ignore[arg-type]


def _config(port: int, pki: Bundle, workdir: Path) -> str:
    """deploy/mosquitto-tls.conf with this test's port, files and folders."""
    wanted = {
        "listener": f"listener {port} 127.0.0.1",
        "cafile": f"cafile {pki.broker / 'ca.crt'}",
        "certfile": f"certfile {pki.broker / 'broker.crt'}",
        "keyfile": f"keyfile {pki.broker / 'broker.key'}",
        "acl_file": f"acl_file {DEPLOY / 'mosquitto.acl'}",
        "persistence_location": f"persistence_location {workdir}/",
    }
    lines, seen = [], set()
    for line in (DEPLOY / "mosquitto-tls.conf").read_text().splitlines():
        key = line.split(" ", 1)[0]
        if key in wanted:
            seen.add(key)
        lines.append(wanted.get(key, line))
    assert seen == set(wanted), f"deploy/mosquitto-tls.conf lacks {set(wanted) - seen}"
    # Started as root, Mosquitto would drop to user "mosquitto", which cannot read the test's
    # private folder; stay as the invoking user instead.
    head = ["user root"] if os.geteuid() == 0 else []
    return "\n".join([*head, *lines, "log_type all", ""])


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    """CA, broker, station, Home Assistant and gateways s1/gA and s1/gB."""
    return write_bundle(tmp_path_factory.mktemp("pki"), [("s1", "gA"), ("s1", "gB")])


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    """Another CA that also issued a certificate with CN ``s1/gA``."""
    return write_bundle(tmp_path_factory.mktemp("foreign"), [("s1", "gA")])


@pytest.fixture
def tls_broker(pki: Bundle, tmp_path: Path) -> Iterator[TlsBroker]:
    """A fresh Mosquitto for this test, TLS only, client certificates required."""
    assert MOSQUITTO is not None
    port = _free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(_config(port, pki, tmp_path))
    log = tmp_path / "broker.log"
    with log.open("ab") as out:
        proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 10
        while "running" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mosquitto did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.02)
        yield TlsBroker(port, pki, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
async def station(tls_broker: TlsBroker) -> AsyncIterator[aiomqtt.Client]:
    """The station, subscribed as its consumer is: every gateway's topics."""
    async with make_client(tls_broker.settings("station", "station-1")) as client:
        await client.subscribe(f"{PREFIX}/+/+/#", qos=1)
        yield client


async def _until(client: aiomqtt.Client, topic: str) -> list[tuple[str, bytes]]:
    """Messages received up to and including the first one on ``topic``."""
    got: list[tuple[str, bytes]] = []
    async with asyncio.timeout(STEP):
        async for message in client.messages:
            payload = message.payload
            got.append((str(message.topic), payload if isinstance(payload, bytes) else b""))
            if message.topic.matches(topic):
                return got
    raise AssertionError("unreachable")


async def _refused(settings: BrokerSettings) -> str:
    """Connect and expect the broker to refuse; returns the error text."""
    client = make_client(settings, clean_session=True)
    client.timeout = REFUSAL_WAIT
    with pytest.raises(aiomqtt.MqttError) as caught:
        async with asyncio.timeout(STEP), client:
            await client.publish(A.topic("event/access"), b"{}", qos=1)
    return str(caught.value)


def _connected_clients(log: Path) -> list[str]:
    """Client ids the broker accepted, from its log."""
    return re.findall(r"New client connected from \S+ as (\S+) ", log.read_text())


async def test_gateway_event_reaches_station(
    tls_broker: TlsBroker, station: aiomqtt.Client
) -> None:
    body = json.dumps({"schema": "doorgate.event.access/1", "door": "main"}).encode()
    will = aiomqtt.Will(A.status, b'{"state":"offline"}', qos=1, retain=True)
    async with make_client(tls_broker.settings("s1/gA", "gA"), will=will) as gateway:
        await gateway.publish(A.status, b'{"state":"online"}', qos=1, retain=True)
        await gateway.publish(A.topic("event/access"), body, qos=1)
        got = await _until(station, A.topic("event/access"))
    assert got == [(A.status, b'{"state":"online"}'), (A.topic("event/access"), body)]
    assert "u's1/gA'" in tls_broker.log.read_text()  # the CN became the user name


async def test_gateway_verifies_the_broker(tls_broker: TlsBroker, foreign: Bundle) -> None:
    # By name: "localhost" is in the broker certificate as well as 127.0.0.1.
    ok = tls_broker.settings("s1/gA", "gA-localhost", host="localhost")
    async with asyncio.timeout(STEP), make_client(ok, clean_session=True):
        pass
    # A gateway that trusts another CA will not talk to this broker (nor to a fake one).
    distrust = tls_broker.settings("s1/gA", "gA-distrust", ca_file=foreign.ca_cert)
    assert "certificate verify failed" in await _refused(distrust)


async def test_client_without_certificate_is_refused(
    tls_broker: TlsBroker, station: aiomqtt.Client
) -> None:
    await _refused(tls_broker.settings("s1/gA", "nocert", cert_file=None, key_file=None))
    # Plain TCP on the TLS port gets nowhere either.
    await _refused(BrokerSettings(host="127.0.0.1", port=tls_broker.port, client_id="plain"))
    log = tls_broker.log.read_text()
    assert "peer did not return a certificate" in log
    assert "wrong version number" in log
    assert _connected_clients(tls_broker.log) == ["station-1"]


async def test_certificate_from_another_ca_is_refused(
    tls_broker: TlsBroker, foreign: Bundle, station: aiomqtt.Client
) -> None:
    folder = foreign.gateways[("s1", "gA")]
    # Same CN as the real gateway A and the right CA file: only the broker can object.
    impostor = tls_broker.settings(
        "s1/gA", "impostor", cert_file=folder / "gateway.crt", key_file=folder / "gateway.key"
    )
    await _refused(impostor)
    assert "certificate verify failed" in tls_broker.log.read_text()
    assert _connected_clients(tls_broker.log) == ["station-1"]


async def test_gateway_cannot_publish_into_another_gateways_topics(
    tls_broker: TlsBroker, station: aiomqtt.Client
) -> None:
    forged = {
        B.topic("event/access"),
        B.status,
        B.topic("alert/door_forced"),
        B.topic("reply/x"),
        B.topic("cmd/unlock"),  # nor forge commands to anyone, itself included
        A.topic("cmd/unlock"),
        f"{PREFIX}/s1/gA-extra/event/access",
        f"{PREFIX}/s1/event/access",
    }
    async with make_client(tls_broker.settings("s1/gA", "gA")) as gateway:
        for topic in sorted(forged):
            await gateway.publish(topic, b"forged", qos=1)  # acknowledged all the same
        await gateway.publish(A.topic("event/access"), b"sentinel", qos=1)
        got = await _until(station, A.topic("event/access"))
    assert got == [(A.topic("event/access"), b"sentinel")]
    assert "Denied PUBLISH from gA" in tls_broker.log.read_text()


async def test_gateway_cannot_read_another_gateways_commands(
    tls_broker: TlsBroker, station: aiomqtt.Client
) -> None:
    async with (
        make_client(tls_broker.settings("s1/gA", "gA")) as gateway_a,
        make_client(tls_broker.settings("s1/gB", "gB")) as gateway_b,
    ):
        await gateway_b.subscribe(B.topic("cmd/+"), qos=1)
        # The broker grants these subscriptions (SUBACK QoS 1) and then filters on delivery.
        for pattern in (B.topic("cmd/#"), f"{PREFIX}/#", "#", A.topic("cmd/+")):
            await gateway_a.subscribe(pattern, qos=1)
        await station.publish(B.topic("cmd/unlock"), b"for-B", qos=1)
        await station.publish(A.topic("cmd/unlock"), b"for-A", qos=1)
        got_a = await _until(gateway_a, A.topic("cmd/unlock"))
        got_b = await _until(gateway_b, B.topic("cmd/unlock"))
    assert got_a == [(A.topic("cmd/unlock"), b"for-A")]  # once, although three filters match
    assert got_b == [(B.topic("cmd/unlock"), b"for-B")]


async def test_gateway_receives_its_own_commands_across_a_reconnect(
    tls_broker: TlsBroker, station: aiomqtt.Client
) -> None:
    settings = tls_broker.settings("s1/gA", "gA")
    async with make_client(settings) as gateway:
        await gateway.subscribe(A.topic("cmd/+"), qos=1)
    # Offline: the persistent session queues the command for the gateway.
    await station.publish(A.topic("cmd/resync"), b"resync", qos=1)
    async with make_client(settings) as gateway:
        got = await _until(gateway, A.topic("cmd/resync"))
    assert got == [(A.topic("cmd/resync"), b"resync")]


async def test_user_name_in_connect_does_not_change_identity(
    tls_broker: TlsBroker, station: aiomqtt.Client
) -> None:
    posing = tls_broker.settings("s1/gA", "gA-posing", username="station", password="x")
    async with make_client(posing, clean_session=True) as gateway:
        await gateway.publish(B.topic("event/access"), b"forged", qos=1)
        await gateway.publish(A.topic("event/access"), b"sentinel", qos=1)
        got = await _until(station, A.topic("event/access"))
    assert got == [(A.topic("event/access"), b"sentinel")]
    assert "u's1/gA'" in tls_broker.log.read_text()


def _connect_with_will_and_vanish(settings: BrokerSettings, will_topic: str) -> None:
    """Connect with a last will, then drop the TCP connection without DISCONNECT.

    paho directly (with the project's TLS context): aiomqtt offers no way to vanish uncleanly.
    """
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=settings.client_id)
    client.tls_set_context(settings.tls_context())
    client.will_set(will_topic, b'{"state":"offline"}', qos=1, retain=True)
    client.connect(settings.host, settings.port, keepalive=settings.keepalive)
    deadline = time.monotonic() + STEP
    while not client.is_connected() and time.monotonic() < deadline:
        client.loop(0.05)
    assert client.is_connected()
    sock = client.socket()
    assert sock is not None
    sock.close()


async def test_last_will_on_another_gateways_status_is_dropped(
    tls_broker: TlsBroker, station: aiomqtt.Client
) -> None:
    # Mosquitto 2.0 accepts the will at CONNECT and checks the ACL only when it fires.
    gateway_a = tls_broker.settings("s1/gA", "gA-will")
    await asyncio.to_thread(_connect_with_will_and_vanish, gateway_a, B.status)
    await asyncio.to_thread(_connect_with_will_and_vanish, gateway_a, A.status)
    got = await _until(station, A.status)
    assert got == [(A.status, b'{"state":"offline"}')]


@pytest.mark.parametrize("service", ["station", "homeassistant"])
async def test_services_cannot_pose_as_a_gateway(
    tls_broker: TlsBroker, station: aiomqtt.Client, service: str
) -> None:
    # Without the ACL's "topic deny" lines, the gateway patterns would let "station" write
    # doorgate/v1/station/..., which the station's own subscription reads as site "station".
    fake = f"{PREFIX}/{service}/event/event/access"
    async with (
        make_client(tls_broker.settings(service, f"{service}-2"), clean_session=True) as svc,
        make_client(tls_broker.settings("s1/gA", "gA")) as gateway,
    ):
        await svc.publish(fake, b"forged", qos=1)
        await svc.publish(f"homeassistant/device/{service}/config", b"{}", qos=1)
        await gateway.publish(A.topic("event/access"), b"sentinel", qos=1)
        got = await _until(station, A.topic("event/access"))
    assert got == [(A.topic("event/access"), b"sentinel")]


async def test_home_assistant_gets_discovery_door_events_only(tls_broker: TlsBroker) -> None:
    device = HaDevice(A, doors=["main"], readers=["entrance"])
    [(topic, payload)] = device_discovery(device)
    other = HaDevice(B, doors=["main"])
    async with (
        make_client(tls_broker.settings("s1/gA", "gA")) as gateway,
        make_client(tls_broker.settings("homeassistant", "ha"), clean_session=True) as ha,
    ):
        # Forbidden first: B's device, a per-component topic, an access event (private).
        await gateway.publish(device_discovery(other)[0][0], b"{}", qos=1, retain=True)
        await gateway.publish(component_discovery(device)[0][0], b"{}", qos=1, retain=True)
        await gateway.publish(topic, payload, qos=1, retain=True)
        await ha.subscribe("homeassistant/#", qos=1)
        await ha.subscribe(f"{PREFIX}/#", qos=1)
        await gateway.publish(A.topic("event/access"), b"private", qos=1)
        await gateway.publish(A.topic("event/door"), b'{"door":"main"}', qos=1)
        got = await _until(ha, A.topic("event/door"))
    assert got == [(topic, payload.encode()), (A.topic("event/door"), b'{"door":"main"}')]
