"""`doorgate station …`: run the station, approve enrolments, send signed commands, handle alerts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rules.i18n import t
from station.commands import Commander
from station.store import StationStore
from sync.mqtt import BrokerSettings
from sync.signing import generate_keypair, load_private_key

station_app = typer.Typer(
    help="The station: receive from gateways, approve, command.", no_args_is_help=True
)
console = Console()

Broker = Annotated[str, typer.Option(help="Broker URL, mqtt://host:port.")]
Db = Annotated[str, typer.Option(help="Station database: a SQLite file, or a postgresql:// URL.")]
KeyFile = Annotated[Path, typer.Option(help="Station Ed25519 private key (PEM).")]
Target = Annotated[str, typer.Argument(help="SITE/GATEWAY, e.g. xh-001/bldg-12.")]
Wait = Annotated[float, typer.Option(help="Seconds to wait for the gateway's reply.")]
DEFAULT_BROKER = "mqtt://127.0.0.1:1883"


def _split(target: str) -> tuple[str, str]:
    site, _, gateway = target.partition("/")
    if not site or not gateway:
        raise typer.BadParameter(f"expected SITE/GATEWAY, got {target!r}")
    return site, gateway


def _commander(broker: str, db: str, key: Path) -> Commander:
    try:
        private = load_private_key(key.read_bytes())
    except (OSError, ValueError) as err:
        raise typer.BadParameter(f"station key {key}: {err}") from err
    return Commander(
        BrokerSettings.from_url(broker, "doorgate-station-cmd"), private, StationStore(db)
    )


def _show_reply(reply: dict[str, Any] | None, wait: float) -> None:
    if reply is None:
        console.print(t("station.no_reply", wait=wait))
        raise typer.Exit(3)
    console.print(t("station.reply", code=reply["code"], message=reply.get("message", "")))
    if not reply.get("ok"):
        raise typer.Exit(1)


@station_app.command("run")
def run(
    broker: Broker = DEFAULT_BROKER,
    db: Db = "station.db",
    share_group: Annotated[
        str | None, typer.Option(help="Shared-subscription group for several station processes.")
    ] = None,
    client_id: Annotated[
        str, typer.Option(help="Stable MQTT client id (keeps the persistent session).")
    ] = "doorgate-station",
) -> None:
    """Receive from every gateway, store each event once, show a live table."""
    from station.live import run_station

    asyncio.run(run_station(broker, db, share_group=share_group, client_id=client_id))


@station_app.command("keygen")
def keygen(
    folder: Annotated[Path, typer.Argument(help="Where to write station.key and station.pub.")],
) -> None:
    """Create the station's command-signing key pair (Ed25519)."""
    private, public = generate_keypair(folder)
    console.print(t("station.keygen", private=private, public=public))


@station_app.command("enrolments")
def enrolments(
    db: Db = "station.db", as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """List enrolments waiting for approval."""
    rows = StationStore(db).enrolments()
    if as_json:
        console.print_json(json.dumps(rows, ensure_ascii=False))
        return
    table = Table(title=t("station.enrolments"))
    for key in (
        "col.gateway",
        "col.occupant",
        "col.unit",
        "col.name",
        "col.id_number",
        "col.tenancy",
        "col.received",
    ):
        table.add_column(t(key))
    for r in rows:
        table.add_row(
            f"{r['site']}/{r['gateway']}",
            r["occupant"],
            r["unit"],
            r["name_masked"],
            r["id_masked"],
            f"{r['valid_from']} ~ {r['valid_to'] or '长期'}",
            r["received"][:19],
        )
    console.print(table)


@station_app.command("approve")
def approve(
    target: Target,
    occupant: Annotated[str, typer.Argument(help="Occupant id.")],
    by: Annotated[str, typer.Option(help="Who approves (recorded).")] = "station",
    broker: Broker = DEFAULT_BROKER,
    db: Db = "station.db",
    key: KeyFile = Path("station.key"),
    wait: Wait = 10.0,
) -> None:
    """Approve an enrolment: sends a signed occupant_upsert and waits for the reply."""
    site, gateway = _split(target)
    reply = asyncio.run(
        _commander(broker, db, key).approve(site, gateway, occupant, by=by, wait=wait)
    )
    _show_reply(reply, wait)


@station_app.command("reject")
def reject(
    target: Target,
    occupant: Annotated[str, typer.Argument(help="Occupant id.")],
    reason: Annotated[str, typer.Option(help="Why (shown to the landlord).")],
    by: Annotated[str, typer.Option(help="Who rejects (recorded).")] = "station",
    broker: Broker = DEFAULT_BROKER,
    db: Db = "station.db",
    key: KeyFile = Path("station.key"),
    wait: Wait = 10.0,
) -> None:
    """Reject an enrolment with a reason (the occupant is suspended at the gateway)."""
    site, gateway = _split(target)
    reply = asyncio.run(
        _commander(broker, db, key).reject(site, gateway, occupant, by=by, reason=reason, wait=wait)
    )
    _show_reply(reply, wait)


@station_app.command("unlock")
def unlock(
    target: Target,
    door: Annotated[str, typer.Option(help="Door name.")] = "main",
    reason: Annotated[str, typer.Option(help="Why (audit).")] = "",
    broker: Broker = DEFAULT_BROKER,
    db: Db = "station.db",
    key: KeyFile = Path("station.key"),
    wait: Wait = 10.0,
) -> None:
    """Remote unlock of a door, by signed command."""
    site, gateway = _split(target)
    body = {"door": door, "reason": reason} if reason else {"door": door}
    _, reply = asyncio.run(
        _commander(broker, db, key).send(site, gateway, "unlock", body, wait=wait)
    )
    _show_reply(reply, wait)


@station_app.command("resync")
def resync(
    target: Target,
    broker: Broker = DEFAULT_BROKER,
    db: Db = "station.db",
    key: KeyFile = Path("station.key"),
    wait: Wait = 10.0,
) -> None:
    """Ask a gateway for a full snapshot of its occupants (masked)."""
    site, gateway = _split(target)
    _, reply = asyncio.run(_commander(broker, db, key).send(site, gateway, "resync", {}, wait=wait))
    _show_reply(reply, wait)
    assert reply is not None
    console.print_json(json.dumps(reply.get("data", {}), ensure_ascii=False))


@station_app.command("alerts")
def alerts(db: Db = "station.db") -> None:
    """List raised alerts nobody has acknowledged yet."""
    table = Table(title=t("station.alerts"))
    for key in ("col.id", "col.gateway", "col.alert", "col.unit", "col.time"):
        table.add_column(t(key))
    for a in StationStore(db).open_alerts():
        table.add_row(
            a["id"][:13],
            f"{a['site']}/{a['gateway']}",
            f"{a['kind']} {a['key']}",
            a["unit"] or "-",
            a["ts"][:19],
        )
    console.print(table)


@station_app.command("ack")
def ack(
    alert_id: Annotated[str, typer.Argument(help="Alert id (or its first characters).")],
    by: Annotated[str, typer.Option(help="Who acknowledges.")] = "station",
    db: Db = "station.db",
) -> None:
    """Acknowledge an alert."""
    if not StationStore(db).ack_alert(alert_id, by):
        console.print(f"no open alert {alert_id!r}")
        raise typer.Exit(1)
    console.print(t("station.acked", id=alert_id))


@station_app.command("web")
def web(
    db: Db = "station.db",
    broker: Annotated[
        str | None, typer.Option(help="Broker URL: also receive from gateways (the consumer).")
    ] = None,
    key: Annotated[
        Path | None, typer.Option(help="Station key: enables approve, reject and unlock.")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8090,
    client_id: Annotated[
        str, typer.Option(help="MQTT client id of the consumer (stable).")
    ] = "doorgate-station-web",
) -> None:
    """Serve the station dashboard (floor plans, live alerts, approvals)."""
    import uvicorn

    from station.consumer import StationConsumer
    from station.web.app import create_app

    store = StationStore(db)
    commander = None
    if key is not None:
        if broker is None:
            raise typer.BadParameter("--key needs --broker")
        commander = _commander(broker, db, key)
        commander.store = store
    consumer = (
        StationConsumer(store, BrokerSettings.from_url(broker, client_id)) if broker else None
    )
    app = create_app(store, commander=commander, consumer=consumer)
    console.print(t("web.serving", url=f"http://{host}:{port}/"))
    uvicorn.run(app, host=host, port=port, log_level="warning")


@station_app.command("web-user")
def web_user(
    name: Annotated[str, typer.Argument(help="Account name.")],
    role: Annotated[str, typer.Option(help="station_staff or station_admin.")] = "station_staff",
    db: Db = "station.db",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create a dashboard account (or reset its password and role)."""
    import station.web.i18n  # noqa: F401 - the dashboard's messages
    from station.web.store import WebStore
    from sync.webui import read_password

    password = read_password(password_stdin, t("web.password"))
    try:
        WebStore(StationStore(db)).add_user(name, role, password)
    except ValueError as err:
        console.print(f"{t('err.prefix')}: {err}")
        raise typer.Exit(1) from err
    console.print(t("web.user_added", name=name, role=role))
