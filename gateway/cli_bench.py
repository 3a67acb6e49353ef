"""``doorgate bench …``: measured performance, printed as JSON, always next to the naive way."""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from gateway.cli_face import bench_app

err = Console(stderr=True)


@bench_app.command("uplink")
def bench_uplink_command(
    events: Annotated[int, typer.Option(help="Backlog size to drain.")] = 20_000,
    window: Annotated[int, typer.Option(help="Publishes awaiting PUBACK at once.")] = 200,
) -> None:
    """Outbox → local broker at QoS 1, against a raw paho loop in the same run."""
    from gateway.bench_uplink import bench_uplink

    def progress(stage: str, done: int) -> None:
        err.print(f"{stage} {done}/{events}")

    result = asyncio.run(bench_uplink(events, window, progress))
    typer.echo(json.dumps(result))


@bench_app.command("faults")
def bench_faults(
    trials: Annotated[int, typer.Option(help="SIGKILLs of the gateway while events flow.")] = 100,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: random).")] = None,
) -> None:
    """Kill the gateway at random points many times; report accepted, received and lost events."""
    from gateway.bench_uplink import local_broker
    from gateway.soak import run_kill_trials

    async def run() -> dict[str, object]:
        with tempfile.TemporaryDirectory(prefix="doorgate-faults-") as tmp:
            async with local_broker(Path(tmp)) as (url, kind):
                result = await run_kill_trials(Path(tmp), url, trials=trials, seed=seed)
                return {"broker": kind, **result.as_dict()}

    result = asyncio.run(run())
    typer.echo(json.dumps(result))
    if result["lost"]:
        raise typer.Exit(1)


@bench_app.command("reader")
def bench_reader_command(
    occupants: Annotated[int, typer.Option(min=1, help="Approved tenants with a card.")] = 100_000,
    taps: Annotated[int, typer.Option(min=10, help="Cards tapped (normal lookup).")] = 400,
    naive_taps: Annotated[
        int, typer.Option(min=0, help="Cards tapped through the naive full scan.")
    ] = 40,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: random).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON line.")] = False,
) -> None:
    """Card frame's last byte → door command (p50/p99), against a naive full scan in the same run.

    Exits 1 if a tapped card did not open the door.
    """
    from gateway.bench_reader import bench_reader

    def progress(stage: str) -> None:
        if not as_json:
            err.print(stage)

    result = asyncio.run(bench_reader(occupants, taps, naive_taps, seed=seed, progress=progress))
    typer.echo(json.dumps(result, ensure_ascii=False))
    if result["missed"]:
        raise typer.Exit(1)


@bench_app.command("fuzz")
def bench_fuzz(
    frames: Annotated[int, typer.Option(min=1, help="Inputs per protocol.")] = 1_000_000,
    kind: Annotated[
        list[str] | None,
        typer.Option(help="Protocol (repeatable): rdm6300, idcard, pn532, wiegand, osdp."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: random).")] = None,
) -> None:
    """Random and mutated frames through every protocol parser; exit 1 on any failure.

    A failure is an exception other than the driver's own errors, a valid frame rejected, or an
    accepted frame with a bad checksum, check character or parity; its input is printed in hex.
    """
    from gateway.fuzz import PROTOCOLS, run_fuzz

    unknown = sorted(set(kind or []) - set(PROTOCOLS))
    if unknown:
        err.print(
            f"[red]error:[/] unknown protocol {', '.join(unknown)} (have {', '.join(PROTOCOLS)})"
        )
        raise typer.Exit(2)
    report = run_fuzz(frames, kind, seed)
    for failure in report["failures"]:
        err.print(
            f"[red]{failure['protocol']}[/]: {failure['problem']}\n  input: {failure['input_hex']}"
        )
    typer.echo(json.dumps(report))
    if not report["ok"]:
        raise typer.Exit(1)


@bench_app.command("district")
def bench_district(
    gateways: Annotated[int, typer.Option(min=1, help="Simulated gateways (one MQTT connection each).")] = 1000,
    stations: Annotated[int, typer.Option(min=1, help="Station consumers sharing one subscription.")] = 2,
    rate: Annotated[float, typer.Option(min=0.001, help="Mean events/s per gateway (each gets 0.5-1.5x).")] = 0.5,
    duration: Annotated[float, typer.Option(min=1, help="Seconds of traffic after the connect ramp.")] = 30.0,
    broker: Annotated[str | None, typer.Option(help="mqtt://host:port (default: a local Mosquitto).")] = None,
    db: Annotated[str | None, typer.Option(help="postgresql://… shared by the stations (default: one SQLite file each).")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Gateway processes (default: one per 250).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON line.")] = False,
) -> None:
    """N gateways → broker → K station consumers ($share): events/s, latency p50/p95/p99, loss.

    Exits 1 if an acknowledged event never reached a station.
    """
    from gateway.bench_uplink import local_broker
    from gateway.district import raise_fd_limit, run_district

    def progress(message: str) -> None:
        if not as_json:
            err.print(message)

    raise_fd_limit(gateways * 2 + 1024)

    async def run() -> dict[str, object]:
        with tempfile.TemporaryDirectory(prefix="doorgate-district-") as tmp:
            # A given broker is reported by its URL, a local one by its kind.
            given: contextlib.AbstractAsyncContextManager[tuple[str, str]] = (
                contextlib.nullcontext((broker, broker)) if broker else local_broker(Path(tmp))
            )
            async with given as (url, kind):
                return {"broker": kind, **await run_district(
                    Path(tmp), url, gateways=gateways, stations=stations, rate=rate,
                    duration=duration, workers=workers, db=db, progress=progress)}

    result = asyncio.run(run())
    typer.echo(json.dumps(result))
    if result["lost"]:
        raise typer.Exit(1)


__all__ = ["bench_app"]
