"""`doorgate reader watch` / `reader simulate`: check a reader on the wall, or stand in for one.

`watch` opens a real (or simulated) reader and prints what it reads. `simulate` starts a reader
simulator on a pseudo-terminal, prints the port to give to `watch`, the daemon's config or a
test, and presents cards to it: typed one per line, or scripted with `--tap` and `--every`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import sys
import tempfile
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from drivers.errors import DriverError
from drivers.osdp_cp import load_scbk
from drivers.reader_watch import ReaderKind, watch
from drivers.simulators.presenter import CardPresenter, open_presenter

reader_app = typer.Typer(
    help="Card readers: check wiring and see what a reader reads.", no_args_is_help=True
)


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
            typer.echo(line)  # never wrapped: one JSON object per line, flushed
            seen += 1
            if count and seen >= count:
                return

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run())
    except DriverError as err:
        Console(stderr=True).print(f"[red]error:[/] {err}")
        raise typer.Exit(1) from err


SIMULATE_HELP = """Start a simulated reader on a pseudo-terminal; present cards until Ctrl-C.

The first line printed (stdout) is the port: a stable symlink, e.g. /tmp/doorgate-sim-rdm6300,
to give to `doorgate reader watch --port`, a `[[readers]] port =` line or a test. Cards are given
as `--tap` (repeatable) and presented once each, or in turn every `--every` seconds; otherwise
type one card per line (an empty line presents the previous or default card).

Card syntax per kind: rdm6300 10 hex digits (67003B51C6); pn532 a 4/7/10-byte UID in hex;
idcard an ID number, optionally `,name` (11010519491231002X,张三; a bad check character makes a
card the reader must refuse); osdp 3 hex bytes for W26 (facility + number) or 4 for W34.

Wiegand cannot be simulated here: it has no serial port (a Wiegand reader pulses two GPIO
lines). Check one with `doorgate reader watch --kind wiegand --port /dev/gpiochip0`; tests use
drivers.simulators.wiegand.SimulatedEdgeSource in code.
"""


@reader_app.command("simulate", help=SIMULATE_HELP)
def simulate_command(
    kind: Annotated[ReaderKind, typer.Option(help="Reader model: rdm6300, idcard, pn532 or osdp.")],
    link: Annotated[
        Path | None,
        typer.Option(help="Symlink to create for the port (default: <tmp>/doorgate-sim-KIND)."),
    ] = None,
    tap: Annotated[
        list[str] | None, typer.Option("--tap", help="A card to present (repeatable).")
    ] = None,
    every: Annotated[
        float | None,
        typer.Option(min=0.05, help="Present the --tap cards in turn every SECONDS."),
    ] = None,
    count: Annotated[
        int, typer.Option(min=0, help="With --every: stop after this many (0: until Ctrl-C).")
    ] = 0,
    hold: Annotated[
        float, typer.Option(min=0.05, help="Seconds a card stays on the reader.")
    ] = 0.8,
    scbk_file: Annotated[
        Path | None, typer.Option(help="OSDP: secure-channel key file (else plain text).")
    ] = None,
    address: Annotated[int, typer.Option(min=0, max=126, help="OSDP: PD address.")] = 0,
    baud: Annotated[
        int | None, typer.Option(help="idcard: the only speed the SAM answers at (9600 for old).")
    ] = None,
) -> None:
    """Start a simulated reader and present cards (see SIMULATE_HELP)."""
    errors = Console(stderr=True, highlight=False)
    if kind is ReaderKind.WIEGAND:
        errors.print(
            "[red]error:[/] a Wiegand reader has no serial port to simulate (it pulses two GPIO "
            "lines). Check a real one with `doorgate reader watch --kind wiegand --port "
            "/dev/gpiochip0`."
        )
        raise typer.Exit(2)
    path = link or Path(tempfile.gettempdir()) / f"doorgate-sim-{kind.value}"
    try:
        scbk = load_scbk(scbk_file) if scbk_file else None
        reader = open_presenter(kind.value, path, address=address, scbk=scbk, baudrate=baud)
        cards = list(tap or [])
        for card in cards:
            reader.parse(card)
    except (ValueError, DriverError) as err:
        errors.print(f"[red]error:[/] {err}")
        raise typer.Exit(2) from err
    for card in cards:
        if warning := reader.warning(card):
            errors.print(f"[yellow]{card}: {warning}[/]")
    if every is not None and not cards:
        cards = [reader.default_card]
    try:
        asyncio.run(_simulate(reader, cards, every=every, count=count, hold=hold, errors=errors))
    except DriverError as err:
        errors.print(f"[red]error:[/] {err}")
        raise typer.Exit(1) from err


async def _simulate(
    reader: CardPresenter,
    cards: list[str],
    *,
    every: float | None,
    count: int,
    hold: float,
    errors: Console,
) -> None:
    """Run the simulator until Ctrl-C/SIGTERM (or `count` scripted presentations).

    Either signal cancels whatever is under way (even a card held on the reader), then the
    simulator stops and its port disappears.
    """
    main = asyncio.current_task()
    assert main is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, main.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        async with reader:
            print(reader.port, flush=True)  # noqa: T201 - the first line is the port, for scripts
            errors.print(f"simulated {reader.kind} reader on {reader.port}; Ctrl-C stops it")

            async def present(card: str) -> None:
                errors.print(f"present {card}")
                await reader.present(card, hold)

            if every is not None:
                await _every(present, cards, every, count)
                return
            for card in cards:
                await present(card)
                await asyncio.sleep(0.3)
            await _interactive(present, reader, cards, errors)


async def _every(
    present: Callable[[str], Awaitable[None]], cards: list[str], every: float, count: int
) -> None:
    loop = asyncio.get_running_loop()
    for shown, card in enumerate(itertools.cycle(cards), start=1):
        started = loop.time()
        await present(card)
        if count and shown >= count:
            return
        await asyncio.sleep(max(0.0, every - (loop.time() - started)))


async def _interactive(
    present: Callable[[str], Awaitable[None]],
    reader: CardPresenter,
    cards: list[str],
    errors: Console,
) -> None:
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def read_stdin() -> None:  # a daemon thread: a blocked readline never holds up the exit
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        loop.call_soon_threadsafe(lines.put_nowait, None)

    threading.Thread(target=read_stdin, name="stdin", daemon=True).start()
    last = cards[-1] if cards else reader.default_card
    errors.print(f"type a card and Enter to present it (Enter alone: {last})")
    while (line := await lines.get()) is not None:
        card = line.strip() or last
        try:
            reader.parse(card)
        except ValueError as err:
            errors.print(f"[red]{err}[/]")
            continue
        if warning := reader.warning(card):
            errors.print(f"[yellow]{warning}[/]")
        await present(card)
        last = card
    await asyncio.Event().wait()  # end of input: keep the reader plugged in until Ctrl-C
