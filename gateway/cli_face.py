"""Face commands: ``doorgate face verify|identify``, ``doorgate enrol face|bulk``, ``bench face``.

Registered by `gateway.cli`; `open_store` is imported inside the commands because gateway.cli
imports this module.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from drivers.face.analysis import PhotoFace, analyse_photo, read_image
from drivers.face.errors import PhotoRejected
from drivers.face.matching import DEFAULT_THRESHOLD
from gateway.faces import (
    EnrolResult,
    enrol_bulk,
    enrol_photos,
    load_index,
    mark_wrong_photo,
    reject_message,
)
from gateway.faces import Progress as ProgressCallback
from gateway.i18n_face import tf
from sync.store import Store

face_app = typer.Typer(
    help="Face tools: compare photos, identify against the store.", no_args_is_help=True
)
enrol_app = typer.Typer(help="Enrol tenants' faces from photos.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks of the performance budget.", no_args_is_help=True)

console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[
    Path,
    typer.Option("--config", "-c", envvar="DOORGATE_CONFIG", help="Gateway config file (TOML)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
DEFAULT_CONFIG = Path("/etc/doorgate/doorgate.toml")


def _face(path: Path) -> PhotoFace:
    try:
        return analyse_photo(read_image(path))
    except PhotoRejected as err:
        err_console.print(
            tf("face.unusable", file=path, reason=reject_message(path, err)), highlight=False
        )
        raise typer.Exit(2) from err


@face_app.command()
def verify(
    img1: Annotated[Path, typer.Argument(help="First photo.")],
    img2: Annotated[Path, typer.Argument(help="Second photo.")],
    as_json: JsonOption = False,
    threshold: Annotated[float, typer.Option(help="Match threshold.")] = DEFAULT_THRESHOLD,
) -> None:
    """Are two photos the same person? Exit 2 if a photo has no usable face."""
    a, b = _face(img1), _face(img2)
    distance = float(np.linalg.norm(a.encoding - b.encoding))
    match = distance <= threshold
    if as_json:
        console.print_json(json.dumps({"distance": round(distance, 4), "match": match}))
    else:
        word = tf("face.same_person" if match else "face.different_person")
        console.print(f"{word} ({distance:.3f})")


@face_app.command()
def identify(
    img: Annotated[Path, typer.Argument(help="Photo of one person.")],
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonOption = False,
) -> None:
    """Who is this? 1:N against every template in the store."""
    from gateway.cli import user_errors, with_store

    face = _face(img)
    with user_errors():
        match = with_store(config, lambda store, _cfg: load_index(store).match(face.encoding))
    distance = None if np.isinf(match.distance) else round(match.distance, 4)
    if as_json:
        console.print_json(
            json.dumps(
                {
                    "occupant_id": match.occupant_id,
                    "distance": distance,
                    "vetoed": list(match.vetoed),
                }
            )
        )
        return
    if match.occupant_id:
        console.print(tf("face.identified", occupant=match.occupant_id, distance=distance))
    else:
        console.print(tf("face.unknown", distance=distance))
    if match.vetoed:
        console.print(tf("face.vetoed", occupants=", ".join(match.vetoed)))


@face_app.command()
def wrong(
    occupant: Annotated[str, typer.Option("--occupant", help="The occupant it was taken for.")],
    img: Annotated[Path, typer.Argument(help="Photo of the face that was wrongly matched.")],
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonOption = False,
) -> None:
    """Record a wrong match: this face is NOT that occupant and will never match them again.

    The face is stored only as a negative template (128 numbers) in the gateway's database. Any
    face within the match threshold of it is refused as that occupant from then on, so use a
    photo of the look-alike, not of the occupant. Exit 2 if the photo has no usable face.
    """
    from gateway.cameras import TEMPLATE_POLL_S
    from gateway.cli import with_store

    def action(store: Store, _cfg: object) -> int | PhotoRejected:
        # A refused photo is exit 2 like `verify`, not the exit 1 of other bad input.
        try:
            return mark_wrong_photo(store, occupant, img)
        except PhotoRejected as err:
            return err

    result = with_store(config, action)
    if isinstance(result, PhotoRejected):
        err_console.print(
            tf("face.unusable", file=img, reason=reject_message(img, result)), highlight=False
        )
        raise typer.Exit(2)
    if as_json:
        console.print_json(json.dumps({"occupant_id": occupant, "negative_template": result}))
    else:
        console.print(
            tf("face.marked_wrong", file=img.name, occupant=occupant, seconds=int(TEMPLATE_POLL_S))
        )


Enrolment = Callable[[Store, ProgressCallback], list[EnrolResult]]


def _run_enrolment(config: Path, action: Enrolment) -> list[EnrolResult]:
    from gateway.cli import user_errors, with_store

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task(tf("face.progress"), total=None)

        def progress(done: int, total: int, result: EnrolResult) -> None:
            bar.update(task, completed=done, total=total)
            style = "green" if result.ok else "yellow"
            bar.console.print(f"[{style}]{result.message}[/]", highlight=False)

        with user_errors():
            results = with_store(config, lambda store, _cfg: action(store, progress))
    ok = sum(r.ok for r in results)
    console.print(tf("face.enrol_summary", ok=ok, refused=len(results) - ok))
    if ok < len(results):
        raise typer.Exit(1)
    return results


@enrol_app.command("face")
def enrol_face(
    occupant: Annotated[str, typer.Option("--occupant", help="Occupant id.")],
    photos: Annotated[list[Path], typer.Argument(help="Photos of this occupant.")],
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Enrol photos of one occupant (each refused photo is named with the reason)."""
    _run_enrolment(config, lambda store, progress: enrol_photos(store, occupant, photos, progress))


@enrol_app.command("bulk")
def enrol_bulk_cmd(
    source: Annotated[
        Path,
        typer.Argument(help="Folder (<id>/*.jpg or <id>_*.jpg) or CSV file (occupant_id,path)."),
    ],
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Enrol many occupants' photos from a folder or a CSV file."""
    _run_enrolment(config, lambda store, progress: enrol_bulk(store, source, progress))


@bench_app.command("face")
def bench_face(
    quick: Annotated[bool, typer.Option(help="Fewer runs and 10,000 templates (≈ 15 s).")] = False,
    templates: Annotated[int | None, typer.Option(help="Enrolled templates.")] = None,
    photos: Annotated[Path | None, typer.Option(help="Folder of the fixture photos.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (the only format; accepted for scripts).")
    ] = True,
) -> None:
    """Face latency p50/p95 and fps (gated vs naive), 1:N time, memory, as JSON."""
    from gateway.bench_face import DEFAULT_PHOTOS, run_bench

    count = templates or (10_000 if quick else 50_000)
    err_console.print(tf("face.bench_running", seconds=15 if quick else 45))
    report = run_bench(photos or DEFAULT_PHOTOS, templates=count, quick=quick)
    del as_json  # JSON either way: the report is for scripts and the README table
    console.print_json(json.dumps(report))
