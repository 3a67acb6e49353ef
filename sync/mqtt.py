"""Broker settings and the aiomqtt client factory shared by the uplink and the station."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import aiomqtt


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    """Where and how to reach the MQTT broker.

    Attributes:
        host: broker host name or address.
        port: broker port (1883 plain, 8883 TLS).
        client_id: MQTT client identifier; stable, so the broker keeps the persistent session.
        username: optional user name.
        password: optional password (read from a secret file, never the config).
        ca_file: CA bundle to verify the broker; enables TLS when set.
        cert_file: client certificate (TLS client authentication).
        key_file: client private key.
        keepalive: seconds between pings; the last will fires after 1.5x this.
    """

    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = "doorgate"
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    keepalive: int = 30

    @classmethod
    def from_url(cls, url: str, client_id: str) -> BrokerSettings:
        """Parse ``mqtt://host:port`` (or ``mqtts://``) into settings."""
        parsed = urlparse(url)
        if parsed.scheme not in {"mqtt", "mqtts", "tcp"} or not parsed.hostname:
            raise ValueError(f"broker URL must look like mqtt://host:port, got {url!r}")
        default = 8883 if parsed.scheme == "mqtts" else 1883
        return cls(
            host=parsed.hostname,
            port=parsed.port or default,
            client_id=client_id,
            username=parsed.username,
            password=parsed.password,
        )

    @property
    def url(self) -> str:
        """The broker as a URL, for logs (never includes the password)."""
        scheme = "mqtts" if self.ca_file else "mqtt"
        return f"{scheme}://{self.host}:{self.port}"

    def tls_context(self) -> ssl.SSLContext | None:
        """A verifying TLS context with the client certificate, or None for plain TCP."""
        if self.ca_file is None:
            return None
        context = ssl.create_default_context(cafile=str(self.ca_file))
        if self.cert_file is not None:
            context.load_cert_chain(
                str(self.cert_file), str(self.key_file) if self.key_file else None
            )
        return context


def make_client(
    settings: BrokerSettings,
    *,
    will: aiomqtt.Will | None = None,
    clean_session: bool = False,
    inflight: int = 200,
) -> aiomqtt.Client:
    """A client with a persistent session (QoS 1 messages survive our reconnects)."""
    client = aiomqtt.Client(
        settings.host,
        settings.port,
        identifier=settings.client_id,
        username=settings.username,
        password=settings.password,
        will=will,
        clean_session=clean_session,
        keepalive=settings.keepalive,
        tls_context=settings.tls_context(),
        timeout=10,
        max_inflight_messages=inflight,
        max_queued_outgoing_messages=0,
    )
    # Our uplink keeps a window of publishes waiting for PUBACK; aiomqtt would warn on each.
    client.pending_calls_threshold = 10_000
    return client
