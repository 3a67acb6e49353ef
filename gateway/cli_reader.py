"""`doorgate reader watch`: the installer's check that a reader on the wall really reads."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from drivers.errors import DriverError
from drivers.reader_watch import ReaderKind, watch

reader_app = typer.Typer(
    help="Card readers: check wiring and see what a reader reads.", no_args_is_help=True
)
console = Console(highlight=False)


@reader_app.command("watch")
def watch_command(
    kind: Annotated[ReaderKind, typer.Option(help="Reader model.")],
    port: Annotated[
        str, typer.Option(help="Serial device or pyserial URL; for wiegand the gpiochip.")
    ],
    baud: Annotated[int | None, typer.Option(help="Line speed (default per model).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    reveal: Annotated[
        bool, typer.Option(help="Show every decoded field unmasked (installer only).")
    ] = False,
    scbk_file: Annotated[Path | None, typer.Option(help="OSDP secure-channel key file.")] = None,
    address: Annotated[int, typer.Option(help="OSDP peripheral address.")] = 0,
    count: Annotated[int, typer.Option(help="Stop after this many reads (0: until Ctrl-C).")] = 0,
) -> None:
    """Print one line per card read, masked unless --reveal."""

    async def run() -> None:
        seen = 0
        async for line in watch(
            kind,
            port,
            baud=baud,
            reveal=reveal,
            as_json=as_json,
            scbk_file=scbk_file,
            osdp_address=address,
        ):
            console.print(line, markup=False)
            seen += 1
            if count and seen >= count:
                return

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run())
    except DriverError as err:
        Console(stderr=True).print(f"[red]error:[/] {err}")
        raise typer.Exit(1) from err
