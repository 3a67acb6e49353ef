"""The gateway's configuration: one TOML file validated by pydantic, secrets from files.

Secrets never sit in the TOML: it names files, resolved against ``$CREDENTIALS_DIRECTORY`` (set by
systemd's ``LoadCredential=``) or, failing that, the config file's folder. Errors name the key and
its line, so ``doorgate check-config`` can point at the mistake.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sync.contract import check_segment
from sync.mqtt import BrokerSettings
from sync.signing import load_public_key

_SECRET_KEYS = re.compile(r"(password|secret|hash_key|private_key|token)$", re.IGNORECASE)


class ConfigError(Exception):
    """The configuration is unusable; `problems` lists ``(line or None, message)`` pairs."""

    def __init__(self, path: Path, problems: list[tuple[int | None, str]]) -> None:
        self.path = path
        self.problems = problems
        lines = [f"{path}:{line or '?'}: {msg}" for line, msg in problems]
        super().__init__("invalid configuration\n" + "\n".join(lines))


class Base(BaseModel):
    """Strict base: unknown keys are errors, values are not coerced across types."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteConfig(Base):
    """Who this gateway is on the MQTT bus."""

    site: str = Field(title="Site code", description="District or estate code, one topic segment.")
    gateway: str = Field(title="Gateway name", description="Unique within the site.")
    timezone: str = Field(
        "Asia/Shanghai", description="Local time zone for tenancy dates and nights."
    )

    @model_validator(mode="after")
    def _segments(self) -> SiteConfig:
        check_segment(self.site, "site")
        check_segment(self.gateway, "gateway")
        return self


class StoreConfig(Base):
    """Where the database lives."""

    path: Path = Field(Path("/var/lib/doorgate/gateway.db"), description="SQLite file (WAL).")
    min_free_mb: float = Field(
        200.0, ge=0, description="Raise storage_low when less room than this is left."
    )
    retention_days: int = Field(
        180, ge=1, description="Access log rows older than this are purged."
    )
    stranger_retention_days: int = Field(
        30, ge=1, description="Anonymous stranger clusters unseen this long are purged."
    )


class SecretsConfig(Base):
    """Files holding secrets (relative paths: credentials directory, else the config's folder)."""

    hash_key_file: str = Field(
        "hash_key", description="HMAC key for ID numbers and card UIDs (≥ 16 bytes)."
    )


class BrokerConfig(Base):
    """How to reach the MQTT broker."""

    url: str = Field("mqtt://127.0.0.1:1883", description="mqtt://host:port or mqtts://host:port")
    client_id: str | None = Field(None, description="Defaults to doorgate-<site>-<gateway>.")
    username: str | None = None
    password_file: str | None = Field(None, description="File with the broker password.")
    ca_file: str | None = Field(None, description="CA bundle; enables TLS.")
    cert_file: str | None = Field(None, description="Client certificate for TLS.")
    key_file: str | None = Field(None, description="Client private key for TLS.")
    keepalive: int = Field(30, ge=5, le=3600)

    @model_validator(mode="after")
    def _url(self) -> BrokerConfig:
        BrokerSettings.from_url(self.url, "check")
        return self


class UplinkConfig(Base):
    """Outbox publishing."""

    window: int = Field(200, ge=1, le=1000, description="Publishes awaiting PUBACK at once.")
    heartbeat_s: float = Field(30.0, gt=0, description="Seconds between status refreshes.")


class ReaderConfig(Base):
    """One card reader at a door."""

    name: str = Field(description="Name used in logs, health and `card add --tap`.")
    kind: Literal["rdm6300", "idcard", "pn532", "wiegand", "osdp"]
    port: str = Field(description="Device path or pyserial URL (socket://…).")
    baud: int | None = Field(None, description="Line speed; the reader kind's default if unset.")
    door: str = Field("main", description="The door this reader opens.")
    direction: Literal["in", "out"] = "in"
    offline_after_s: float = Field(30.0, gt=0, description="Raise reader_offline after this.")
    debounce_s: float | None = Field(
        None, gt=0, description="Same card again only after this gap (default per reader model)."
    )
    address: int = Field(0, ge=0, le=126, description="OSDP peripheral address.")
    scbk_file: str | None = Field(None, description="OSDP secure-channel key file (16 bytes hex).")
    d0_line: int = Field(17, ge=0, description="Wiegand D0 GPIO line (port = gpiochip path).")
    d1_line: int = Field(27, ge=0, description="Wiegand D1 GPIO line.")


class CameraConfig(Base):
    """A door camera and the face engine watching it."""

    name: str = Field(description="Name used in logs, health and camera_offline alerts.")
    source: str = Field(
        description="RTSP URL, V4L2 device (/dev/video0 or 0), video file or image pattern."
    )
    door: str = Field("main", description="The door this camera watches.")
    direction: Literal["in", "out"] = Field("in", description="Way a recognised face passes.")
    threshold: float = Field(0.5, gt=0, lt=1, description="Face distance accepted as a match.")
    require_live: bool = Field(
        True, description="Open only for a face judged live (blink/3-D motion)."
    )
    offline_after_s: float = Field(30.0, gt=0, description="Raise camera_offline after this.")
    fps: float | None = Field(None, gt=0, description="Pace a video-file source at this rate.")


class DoorConfig(Base):
    """A door: its lock relay and contact, and who may pass when."""

    name: str = "main"
    mode: Literal["card", "face", "card_or_face", "card_and_face", "idcard_and_face"] = Field(
        "card_or_face", description="Credentials the door requires (idcard_and_face: 人证合一)."
    )
    schedule: list[str] = Field(
        default_factory=list,
        description='Weekly opening hours, e.g. ["mon-fri 06:00-23:00"]; empty: always.',
    )
    anti_passback: str | None = Field(None, description="Anti-passback area this door guards.")
    backend: Literal["simulated", "gpiod"] = "simulated"
    unlock_s: float = Field(3.0, gt=0, le=60, description="How long the lock stays released.")
    fail_safe: bool = Field(False, description="True: the lock opens when power fails.")
    chip: str = Field("/dev/gpiochip0", description="gpiochip of the relay and inputs (gpiod).")
    relay_line: int = Field(5, ge=0, description="Lock relay output line (gpiod).")
    contact_line: int = Field(6, ge=0, description="Door contact input line (gpiod).")
    exit_line: int = Field(13, ge=0, description="Exit button input line (gpiod).")


class RulesSection(Base):
    """Thresholds of the alerts (defaults as the issue states them)."""

    night_start: str = Field("23:00", description="Overcrowding night window start (local).")
    night_end: str = Field("05:00", description="Overcrowding night window end (local).")
    door_held_s: float = Field(60.0, gt=0, description="Open longer than this: door_held.")
    vacancy_days: int = Field(7, ge=1, description="Approved occupant unseen this long: vacancy.")
    stranger_days: int = Field(3, ge=1, description="Stranger seen on this many distinct days…")
    stranger_window_days: int = Field(7, ge=1, description="…within this many days.")
    building_limit: int | None = Field(None, ge=1, description="Building headcount limit.")
    tick_s: float = Field(5.0, gt=0, description="Seconds between time-based checks.")


class MetricsConfig(Base):
    """Prometheus metrics endpoint of the daemon."""

    listen: str = Field(
        "127.0.0.1:9108", description='host:port for /metrics; "" turns the endpoint off.'
    )

    @model_validator(mode="after")
    def _address(self) -> MetricsConfig:
        if self.listen and not re.fullmatch(r"[A-Za-z0-9.:\[\]-]+:\d{1,5}", self.listen):
            raise ValueError(f"metrics.listen must be host:port, got {self.listen!r}")
        return self


class PortalConfig(Base):
    """The landlord portal, served by the daemon on the building LAN."""

    listen: str = Field(
        "", description='host:port of the portal, e.g. "0.0.0.0:8080"; "" turns it off.'
    )
    tap_timeout_s: float = Field(
        20.0, gt=0, le=300, description='Seconds "tap the card now" waits for a card.'
    )

    @model_validator(mode="after")
    def _address(self) -> PortalConfig:
        if self.listen and not re.fullmatch(r"[A-Za-z0-9.:\[\]-]+:\d{1,5}", self.listen):
            raise ValueError(f"portal.listen must be host:port, got {self.listen!r}")
        return self


class HomeAssistantConfig(Base):
    """Home Assistant MQTT discovery (doors, readers, headcount, alerts; read-only)."""

    enabled: bool = Field(False, description="Publish retained discovery messages on connect.")
    discovery_prefix: str = Field("homeassistant", description="HA's MQTT discovery prefix.")


class StationLinkConfig(Base):
    """The supervising station: its command key and who approves enrolments."""

    public_key_file: str | None = Field(
        None, description="Station's Ed25519 public key (PEM); enables signed commands."
    )
    approval: Literal["station", "local"] = Field(
        "station",
        description="station: enrolments wait for a signed approval; local: landlord approves.",
    )
    capacity_policy: Literal["refuse", "flag"] = Field(
        "refuse",
        description="Approving beyond a unit's capacity: refuse, or allow and raise an alert.",
    )


class GatewayConfig(Base):
    """The whole gateway configuration file."""

    site: SiteConfig
    store: StoreConfig = StoreConfig()
    secrets: SecretsConfig = SecretsConfig()
    broker: BrokerConfig = BrokerConfig()
    uplink: UplinkConfig = UplinkConfig()
    station: StationLinkConfig = StationLinkConfig()
    rules: RulesSection = RulesSection()
    homeassistant: HomeAssistantConfig = HomeAssistantConfig()
    metrics: MetricsConfig = MetricsConfig()
    portal: PortalConfig = PortalConfig()
    readers: Annotated[list[ReaderConfig], Field(default_factory=list)]
    cameras: Annotated[list[CameraConfig], Field(default_factory=list)]
    doors: Annotated[list[DoorConfig], Field(default_factory=lambda: [DoorConfig()])]

    @model_validator(mode="after")
    def _references(self) -> GatewayConfig:
        doors = {d.name for d in self.doors}
        for reader in self.readers:
            if reader.door not in doors:
                raise ValueError(
                    f"reader {reader.name!r} names door {reader.door!r}, which is not in [[doors]]"
                )
        for camera in self.cameras:
            if camera.door not in doors:
                raise ValueError(
                    f"camera {camera.name!r} names door {camera.door!r}, which is not in [[doors]]"
                )
        names = [r.name for r in self.readers] + [c.name for c in self.cameras]
        if len(names) != len(set(names)):
            raise ValueError("reader and camera names must be unique")
        return self


def load_config(path: Path | str) -> GatewayConfig:
    """Parse and validate a config file.

    Raises:
        ConfigError: unreadable file, TOML syntax error or invalid values, with line numbers.
    """
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(path, [(None, f"cannot read: {err}")]) from err
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        match = re.search(r"line (\d+)", str(err))
        raise ConfigError(path, [(int(match.group(1)) if match else None, str(err))]) from err
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(path, _problems(err, KeyLines(text))) from err
    return config.model_copy(update={"store": _resolve_store(config.store, path)})


def _resolve_store(store: StoreConfig, config_path: Path) -> StoreConfig:
    if store.path.is_absolute():
        return store
    return store.model_copy(update={"path": config_path.parent / store.path})


def _problems(err: ValidationError, lines: KeyLines) -> list[tuple[int | None, str]]:
    problems: list[tuple[int | None, str]] = []
    for error in err.errors():
        loc = tuple(error["loc"])
        where = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in loc).replace(".[", "[")
        message = error["msg"]
        if error["type"] == "extra_forbidden" and loc and _SECRET_KEYS.search(str(loc[-1])):
            message = (
                "secrets are never written in the config: put it in a file and name it with *_file"
            )
        elif error["type"] == "extra_forbidden":
            message = "unknown key (check its spelling and section)"
        problems.append((lines.find(loc), f"{where or '(top level)'}: {message}"))
    return problems


class KeyLines:
    """Maps a pydantic error location (``("readers", 0, "baud")``) to a line of the TOML text."""

    _TABLE = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?")
    _KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"']+)\s*=")

    def __init__(self, text: str) -> None:
        self.index: dict[tuple[str | int, ...], int] = {}
        counters: dict[str, int] = {}
        table: tuple[str | int, ...] = ()
        for number, line in enumerate(text.splitlines(), start=1):
            if m := self._TABLE.match(line):
                name = m.group(2).strip().strip("\"'")
                parts: tuple[str | int, ...] = tuple(name.split("."))
                if m.group(1) == "[[":
                    counters[name] = counters.get(name, -1) + 1
                    parts = (*parts, counters[name])
                table = parts
                self.index.setdefault(table, number)
            elif m := self._KEY.match(line):
                self.index.setdefault((*table, m.group(1).strip("\"'")), number)

    def find(self, loc: tuple[Any, ...]) -> int | None:
        """The line of the deepest part of `loc` present in the file."""
        for end in range(len(loc), 0, -1):
            if (line := self.index.get(tuple(loc[:end]))) is not None:
                return line
        return None


def credentials_dir(config_path: Path | None) -> Path:
    """``$CREDENTIALS_DIRECTORY`` when systemd set it, else the config file's folder."""
    if env := os.environ.get("CREDENTIALS_DIRECTORY"):
        return Path(env)
    return config_path.parent if config_path else Path.cwd()


def read_secret(name: str, config_path: Path | None) -> bytes:
    """Read a secret file named in the config.

    Raises:
        ConfigError: missing, unreadable or empty.
    """
    path = Path(name) if Path(name).is_absolute() else credentials_dir(config_path) / name
    where = config_path or Path("<config>")
    try:
        value = path.read_bytes().strip()
    except OSError as err:
        raise ConfigError(where, [(None, f"secret file {path}: {err.strerror}")]) from err
    if not value:
        raise ConfigError(where, [(None, f"secret file {path} is empty")])
    return value


def broker_settings(config: GatewayConfig, config_path: Path | None) -> BrokerSettings:
    """Turn the [broker] section into connection settings, reading its secret files."""
    section = config.broker
    base = BrokerSettings.from_url(
        section.url, section.client_id or f"doorgate-{config.site.site}-{config.site.gateway}"
    )
    creds = credentials_dir(config_path)

    def _path(name: str | None) -> Path | None:
        return None if name is None else (Path(name) if Path(name).is_absolute() else creds / name)

    password = (
        read_secret(section.password_file, config_path).decode()
        if section.password_file
        else base.password
    )
    return BrokerSettings(
        host=base.host,
        port=base.port,
        client_id=base.client_id,
        username=section.username or base.username,
        password=password,
        ca_file=_path(section.ca_file),
        cert_file=_path(section.cert_file),
        key_file=_path(section.key_file),
        keepalive=section.keepalive,
    )


def station_public_key(config: GatewayConfig, config_path: Path | None) -> Ed25519PublicKey | None:
    """The station's command-signing key, or None when no station key is configured."""
    name = config.station.public_key_file
    if name is None:
        return None
    try:
        return load_public_key(read_secret(name, config_path))
    except ValueError as err:
        where = config_path or Path("<config>")
        raise ConfigError(where, [(None, f"station.public_key_file {name}: {err}")]) from err
