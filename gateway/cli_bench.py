"""``doorgate bench …``: measured performance, printed as JSON, always next to the naive way."""

from __future__ import annotations

import asyncio
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


__all__ = ["bench_app"]
