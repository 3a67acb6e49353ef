"""The `doorgate` command: a thin layer that parses arguments and calls the library.

Every change to units, occupants and cards goes through `sync.store.Store`, the same code the
daemon uses; errors become a message in the user's language and a non-zero exit status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from drivers.simulators.presenter import SimulatedKind
from gateway.config import ConfigError, GatewayConfig, load_config, read_secret
from rules.i18n import set_language, t
from rules.model import CredentialKind, Occupant, Unit
from sync.contract import Topics
from sync.errors import SyncError, ValidationError
from sync.store import Store

T = TypeVar("T")

app = typer.Typer(
    help="doorgate: building access controller (cards, faces, occupancy, MQTT to the station).",
    no_args_is_help=True,
    add_completion=False,
)
unit_app = typer.Typer(help="Units (house codes) of the building.", no_args_is_help=True)
occupant_app = typer.Typer(help="Tenants: enrol, approve, move out.", no_args_is_help=True)
card_app = typer.Typer(help="Cards bound to tenants.", no_args_is_help=True)
app.add_typer(unit_app, name="unit")
app.add_typer(occupant_app, name="occupant")
app.add_typer(card_app, name="card")

console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[
    Path,
    typer.Option(
        "--config",
        "-c",
        envvar="DOORGATE_CONFIG",
        help="Gateway config file (TOML).",
        show_default=True,
    ),
]
DEFAULT_CONFIG = Path("/etc/doorgate/doorgate.toml")


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print an error for a person and return the exit to raise."""
    err_console.print(f"[red]{t('err.prefix')}:[/] {message}", highlight=False)
    return typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn expected failures (bad input, bad config, store problems) into clean exits."""
    try:
        yield
    except ConfigError as err:
        raise fail(str(err), 2) from err
    except (SyncError, ValueError) as err:
        raise fail(str(err)) from err


@app.callback()
def main_options(
    lang: Annotated[str, typer.Option(envvar="DOORGATE_LANG", help="zh (简体中文) or en.")] = "zh",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at DEBUG.")] = False,
    log_format: Annotated[
        str,
        typer.Option(
            envvar="DOORGATE_LOG_FORMAT",
            help="auto (journald fields under systemd, else text), text, json or journal.",
        ),
    ] = "auto",
) -> None:
    """Common options."""
    from gateway.logs import FORMATS, setup_logging

    with user_errors():
        set_language(lang)
        if log_format not in FORMATS:
            raise ValueError(f"--log-format: {log_format!r} is not one of {', '.join(FORMATS)}")
    setup_logging(logging.DEBUG if verbose else logging.WARNING, log_format)


def open_store(config_path: Path) -> tuple[GatewayConfig, Store]:
    """Load the config and open its store (migrating it); enrolments queue a request upstream."""
    config = load_config(config_path)
    key = read_secret(config.secrets.hash_key_file, config_path)
    topics = Topics(config.site.site, config.site.gateway)
    return config, Store.open(config.store.path, key, topics)


def with_store(config_path: Path, action: Callable[[Store, GatewayConfig], T]) -> T:
    """Run `action` against the configured store, closing it afterwards."""
    with user_errors():
        config, store = open_store(config_path)
        try:
            return action(store, config)
        finally:
            store.close()


# --- daemon, demo, config --------------------------------------------------------------


@app.command()
def demo(
    taps: Annotated[int, typer.Option(min=1, help="How many card taps to script.")] = 8,
    broker: Annotated[
        str | None,
        typer.Option(help="Use this broker (mqtt://host:port) instead of the embedded one."),
    ] = None,
    forever: Annotated[bool, typer.Option(help="Keep tapping until Ctrl-C.")] = False,
    reader: Annotated[
        SimulatedKind, typer.Option(help="Simulated reader the tenants present cards to.")
    ] = SimulatedKind.RDM6300,
    camera: Annotated[
        bool, typer.Option(help="Add a door camera playing a composed video (tenant, stranger, held photo).")
    ] = True,
    web: Annotated[
        bool, typer.Option(help="Serve the landlord portal and the station dashboard on loopback.")
    ] = True,
) -> None:
    """Run a demo building end to end: simulated reader and camera → gateway → MQTT → station."""
    from gateway.demo import run_demo

    with user_errors():
        code = asyncio.run(
            run_demo(
                taps=taps, broker_url=broker, forever=forever, console=console,
                reader=reader.value, camera=camera, web=web,
            )
        )
    raise typer.Exit(code)


@app.command()
def run(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Run the gateway daemon."""
    from gateway.app import run_gateway
    from gateway.config import broker_settings, station_public_key

    with user_errors():
        settings = load_config(config)
        key = read_secret(settings.secrets.hash_key_file, config)
        broker = broker_settings(settings, config)
        station_key = station_public_key(settings, config)
    logging.getLogger().setLevel(logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            run_gateway(settings, config, hash_key=key, broker=broker, station_key=station_key)
        )


@app.command("check-config")
def check_config(path: Annotated[Path, typer.Argument(help="Config file to validate.")]) -> None:
    """Validate a config file; exit non-zero naming the bad key and its line."""
    with user_errors():
        config = load_config(path)
        read_secret(config.secrets.hash_key_file, path)
    console.print(t("ok.config_valid", path=path))


@app.command()
def backup(
    dest: Annotated[Path, typer.Argument(help="Backup file to write.")],
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Copy the store with SQLite's online backup (safe while the daemon runs)."""
    from rich.progress import Progress

    from gateway.ops import OpsError
    from gateway.ops import backup as run_backup

    with user_errors():
        settings = load_config(config)
    with Progress(console=err_console, transient=True) as bar:
        task = bar.add_task(t("ops.backup"), total=None)
        try:
            info = run_backup(settings.store.path, dest,
                              lambda done, total: bar.update(task, completed=done, total=total))
        except OpsError as err:
            raise fail(str(err)) from err
    console.print(t("ops.backed_up", path=info.path, mb=round(info.bytes / 2**20, 2),
                    version=info.schema_version))


@app.command()
def restore(
    source: Annotated[Path, typer.Argument(help="Backup file to restore.")],
    force: Annotated[bool, typer.Option(help="Replace an existing store (stop the daemon first).")] = False,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Restore the store from a backup; the replaced file is kept as *.before-restore."""
    from gateway.ops import OpsError
    from gateway.ops import restore as run_restore

    with user_errors():
        settings = load_config(config)
        key = read_secret(settings.secrets.hash_key_file, config)
    try:
        info = run_restore(source, settings.store.path, force=force)
    except OpsError as err:
        raise fail(str(err)) from err
    with user_errors():
        Store.open(settings.store.path, key).close()  # applies any newer migrations now
    console.print(t("ops.restored", path=info.path, version=info.schema_version))


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Show the store's counts, the outbox backlog and the room left on disk."""
    import json

    from gateway.ops import status as read_status

    with user_errors():
        settings = load_config(config)
        if not settings.store.path.exists():
            raise ValueError(f"no database at {settings.store.path} (has the daemon run yet?)")
        report = {"site": settings.site.site, "gateway": settings.site.gateway,
                  **read_status(settings.store.path)}
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False))
        return
    table = Table(show_header=False)
    for key, value in report.items():
        table.add_row(key, str(value))
    console.print(table)


# --- units -----------------------------------------------------------------------------


@unit_app.command("add")
def unit_add(
    unit_id: Annotated[str, typer.Argument(help="House code, e.g. A-101.")],
    building: Annotated[str, typer.Option(help="Building name or number.")],
    floor: Annotated[int, typer.Option(help="Floor number.")],
    room: Annotated[str, typer.Option(help="Room label.")],
    capacity: Annotated[int, typer.Option(help="Most persons allowed to live there.")],
    area: Annotated[float | None, typer.Option(help="Floor area in m².")] = None,
    landlord: Annotated[str | None, typer.Option(help="Landlord's name or account.")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Add a unit."""
    unit = Unit(unit_id, building, floor, room, capacity, area, landlord)
    with_store(config, lambda store, _: store.add_unit(unit))
    console.print(t("ok.unit_added", id=unit_id))


@unit_app.command("list")
def unit_list(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """List units with their approved and pending headcounts."""
    rows = with_store(config, lambda store, _: store.list_units())
    table = _table(
        "col.id",
        "col.building",
        "col.floor",
        "col.room",
        "col.capacity",
        "col.approved",
        "col.pending",
    )
    for r in rows:
        table.add_row(
            r["id"],
            r["building"],
            str(r["floor"]),
            r["room"],
            str(r["capacity"]),
            str(r["approved"]),
            str(r["pending"]),
        )
    console.print(table)


# --- occupants -------------------------------------------------------------------------


@occupant_app.command("add")
def occupant_add(
    unit: Annotated[str, typer.Option(help="Unit (house code).")],
    name: Annotated[str, typer.Option(help="Full name as on the ID card.")],
    id_number: Annotated[str, typer.Option("--id-number", help="18-character resident ID number.")],
    valid_from: Annotated[str, typer.Option("--from", help="Tenancy start, YYYY-MM-DD.")],
    valid_to: Annotated[
        str | None, typer.Option("--to", help="Tenancy end (inclusive), YYYY-MM-DD.")
    ] = None,
    occupant_id: Annotated[
        str | None, typer.Option("--id", help="Occupant id (generated if omitted).")
    ] = None,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Enrol a tenant (pending until approved)."""
    with user_errors():
        start, end = _date(valid_from, "--from"), _date(valid_to, "--to") if valid_to else None
    occupant = with_store(
        config,
        lambda store, _: store.add_occupant(
            unit, name, id_number, start, end, occupant_id=occupant_id
        ),
    )
    console.print(t("ok.occupant_added", name=occupant.name, id=occupant.id))


@occupant_app.command("list")
def occupant_list(
    unit: Annotated[str | None, typer.Option(help="Only this unit.")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """List tenants (ID numbers masked)."""
    rows = with_store(config, lambda store, _: store.list_occupants(unit))
    table = _table("col.id", "col.unit", "col.name", "col.id_number", "col.status", "col.tenancy")
    for o in rows:
        tenancy = f"{o.valid_from} ~ {o.valid_to or '长期'}"
        table.add_row(o.id, o.unit_id, o.name, o.id_masked, t(f"status.{o.status}"), tenancy)
    console.print(table)


@occupant_app.command("approve")
def occupant_approve(
    occupant_id: Annotated[str, typer.Argument(help="Occupant id.")],
    by: Annotated[str, typer.Option(help="Who approves (recorded).")] = "landlord-cli",
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Approve a pending tenant locally (only where `station.approval = "local"`)."""

    def approve(store: Store, settings: GatewayConfig) -> Occupant:
        if settings.station.approval != "local":
            raise ValidationError(t("err.station_approves"))
        return store.approve(occupant_id, by=by, capacity_policy=settings.station.capacity_policy)

    occupant = with_store(config, approve)
    console.print(t("ok.approved", name=occupant.name, id=occupant.id))


@occupant_app.command("move-out")
def occupant_move_out(
    occupant_id: Annotated[str, typer.Argument(help="Occupant id.")],
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Record that a tenant moved out: cards and face templates are cancelled at once."""
    occupant = with_store(config, lambda store, _: store.move_out(occupant_id))
    console.print(t("ok.moved_out", name=occupant.name, id=occupant.id))


# --- cards -----------------------------------------------------------------------------


@card_app.command("add")
def card_add(
    occupant: Annotated[str, typer.Option(help="Occupant id.")],
    uid: Annotated[
        str | None, typer.Option(help="Card UID in hex (as printed by `reader watch --reveal`).")
    ] = None,
    tap: Annotated[
        str | None, typer.Option(help="Read the UID by tapping the card on this configured reader.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for --tap.")] = 30.0,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Bind an IC card to a tenant, by UID or by tapping it on a reader."""
    if (uid is None) == (tap is None):
        raise fail("give exactly one of --uid HEX or --tap READER")
    if tap is not None:
        uid = _tap_uid(config, tap, timeout)
    assert uid is not None
    card = with_store(config, lambda store, _: store.add_card(occupant, CredentialKind.IC, uid))
    cards = with_store(config, lambda store, _: store.list_cards(occupant))
    masked = next(c["masked"] for c in cards if c["id"] == card.id)
    console.print(t("ok.card_added", occupant=occupant, masked=masked))


@card_app.command("list")
def card_list(
    occupant: Annotated[str | None, typer.Option(help="Only this occupant's cards.")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """List cards (UIDs masked)."""
    rows = with_store(config, lambda store, _: store.list_cards(occupant))
    table = _table("col.id", "col.person", "col.kind", "col.card", "col.status")
    for r in rows:
        table.add_row(str(r["id"]), r["occupant_id"], r["kind"], r["masked"], r["status"])
    console.print(table)


def _tap_uid(config_path: Path, reader_name: str, timeout: float) -> str:
    from gateway.tap import read_one_card

    with user_errors():
        config = load_config(config_path)
        reader = next((r for r in config.readers if r.name == reader_name), None)
        if reader is None:
            names = ", ".join(r.name for r in config.readers) or "none"
            raise fail(f"no reader named {reader_name!r} in {config_path} (configured: {names})")
        err_console.print(t("tap.waiting", reader=reader_name, timeout=timeout))
        uid = asyncio.run(read_one_card(reader, timeout))
    if uid is None:
        raise fail(t("tap.timeout", timeout=timeout))
    return uid


# --- station, readers, faces -----------------------------------------------------------


def _register_subcommands() -> None:
    from gateway.cli_bench import bench_app
    from gateway.cli_face import enrol_app, face_app
    from gateway.cli_portal import portal_app
    from gateway.cli_reader import reader_app
    from gateway.cli_replay import replay_command
    from station.cli import station_app

    app.add_typer(station_app, name="station")
    app.add_typer(reader_app, name="reader")
    app.add_typer(portal_app, name="portal")
    app.add_typer(face_app, name="face")
    app.add_typer(enrol_app, name="enrol")
    app.add_typer(bench_app, name="bench")
    app.command("replay")(replay_command)


_register_subcommands()


def _table(*keys: str) -> Table:
    table = Table(show_lines=False)
    for key in keys:
        table.add_column(t(key))
    return table


def _date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as err:
        raise ValueError(f"{option} must be a date like 2026-09-01, got {value!r}") from err


def main(argv: list[str] | None = None) -> Any:
    """Console entry point."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return app(args=argv if argv is not None else sys.argv[1:], prog_name="doorgate")
