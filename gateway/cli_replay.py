"""`doorgate replay FILE.jsonl`: run a scripted history through the daemon's rules.

The format is documented in `rules.replay` (and in the README). Every line goes through
`rules.replay.Replayer`, which calls `rules.engine.step` exactly as the daemon does; this module
only reads the file and the optional config, prints, and turns bad input into messages and exit
status 2 (never a traceback).

Bad lines: by default the replay stops at the first one (after printing what came before it);
with ``--keep-going`` a bad line is reported and skipped (it changes nothing) and the replay goes
on. Either way the exit status is 2 when any line was bad.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tomllib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gateway.config import ConfigError, GatewayConfig, KeyLines, _problems, load_config
from rules.engine import RulesConfig
from rules.i18n import add_messages, t
from rules.replay import Replayer, ReplayError

REPLAY_MESSAGES: dict[str, dict[str, str]] = {
    "replay.title": {"zh": "回放：{file}", "en": "replay: {file}"},
    "replay.col.time": {"zh": "时间", "en": "time"},
    "replay.col.event": {"zh": "事件", "en": "event"},
    "replay.col.what": {"zh": "类别", "en": "what"},
    "replay.col.subject": {"zh": "对象", "en": "about"},
    "replay.col.detail": {"zh": "详情", "en": "detail"},
    "replay.decision": {"zh": "判定", "en": "decision"},
    "replay.alert": {"zh": "告警", "en": "alert"},
    "replay.clear": {"zh": "解除", "en": "cleared"},
    "replay.sep": {"zh": "、", "en": ", "},
    "replay.awaiting": {"zh": "等待第二因素", "en": "awaiting second factor"},
    "replay.summary": {
        "zh": "{lines} 行，{decisions} 个判定，{alerts} 个告警，{clears} 个解除",
        "en": "{lines} lines, {decisions} decisions, {alerts} alerts, {clears} cleared",
    },
    "replay.bad_lines": {"zh": "{count} 行有错误", "en": "{count} bad line(s)"},
    "replay.count_limit": {"zh": "{count}（上限 {limit}）", "en": "{count} (limit {limit})"},
    "replay.cannot_read": {"zh": "无法读取 {file}：{error}", "en": "cannot read {file}: {error}"},
    # Alert kinds, as the station shows them.
    "replay.kind.overcrowding": {"zh": "超员居住", "en": "overcrowding"},
    "replay.kind.building_over_capacity": {"zh": "楼栋超员", "en": "building over capacity"},
    "replay.kind.stranger_recurring": {"zh": "陌生人多次出现", "en": "recurring stranger"},
    "replay.kind.vacancy": {"zh": "长期未归", "en": "vacancy"},
    "replay.kind.tailgating": {"zh": "尾随进入", "en": "tailgating"},
    "replay.kind.door_forced": {"zh": "门被强行打开", "en": "door forced open"},
    "replay.kind.door_held": {"zh": "门长时间未关", "en": "door held open"},
    "replay.kind.repeated_denial": {"zh": "多次被拒", "en": "repeated denials"},
    "replay.kind.tenancy_expiring": {"zh": "租期将到", "en": "tenancy expiring"},
    "replay.kind.approval_overdue": {"zh": "审批超时", "en": "approval overdue"},
    "replay.kind.reader_offline": {"zh": "读卡器离线", "en": "reader offline"},
    "replay.kind.camera_offline": {"zh": "摄像头离线", "en": "camera offline"},
    # Reasons the main catalogue does not carry yet.
    "replay.reason.outside_schedule": {"zh": "不在开放时间", "en": "outside opening hours"},
    "replay.reason.factor_not_accepted": {
        "zh": "此门不接受该凭证",
        "en": "credential not accepted here",
    },
    "replay.reason.first_factor_missing": {"zh": "请先刷身份证", "en": "ID card first"},
    "replay.reason.awaiting_second_factor": {"zh": "等待人脸核验", "en": "awaiting the face"},
    "replay.reason.factor_mismatch": {"zh": "人证不符", "en": "card and face do not match"},
    "replay.reason.factor_timeout": {"zh": "人脸核验超时", "en": "second factor timed out"},
    "replay.reason.factor_superseded": {"zh": "被新的刷卡取代", "en": "superseded by a newer card"},
    "replay.reason.anti_passback": {"zh": "防潜回：未出先进", "en": "anti-passback"},
}
add_messages(REPLAY_MESSAGES)

SUBJECTS = ("unit", "door", "occupant", "stranger", "credential", "device")


def replay_command(
    file: Annotated[Path, typer.Argument(help="History, one JSON object per line ('-': stdin).")],
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="A gateway config (thresholds from its rules table, and its doors) or a TOML "
            "holding only those two tables. Default: the built-in thresholds; "
            "$DOORGATE_CONFIG is not read.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per output line.")
    ] = False,
    keep_going: Annotated[
        bool, typer.Option("--keep-going", help="Report and skip bad lines instead of stopping.")
    ] = False,
) -> None:
    """Replay a scripted history (JSON Lines) through the rules; print decisions and alerts."""
    err = Console(stderr=True, soft_wrap=True)
    rules = _rules_config(config, err) if config is not None else None
    source = "<stdin>" if str(file) == "-" else file.name
    replayer = Replayer(rules, source)
    rows: list[dict[str, Any]] = []
    errors = lines = 0
    try:
        for number, text in enumerate(_lines(file), start=1):
            lines = number
            try:
                outputs = replayer.feed(text, number)
            except ReplayError as problem:
                errors += 1
                _error(err, str(problem))
                if not keep_going:
                    break
                continue
            for output in outputs:
                if as_json:
                    typer.echo(json.dumps(output, ensure_ascii=False))
                else:
                    rows.append(output)
    except _ReadFailed as problem:
        _error(err, t("replay.cannot_read", file=file, error=problem.__cause__))
        raise typer.Exit(2) from problem
    except BrokenPipeError:
        _silence_stdout()  # the reader went away (`| head`): stop quietly
        return
    if not as_json:
        _print_table(source, rows, lines)
    if errors:
        if keep_going:
            err.print(t("replay.bad_lines", count=errors))
        raise typer.Exit(2)


def _error(err: Console, message: str) -> None:
    err.print(f"[red]{t('err.prefix')}:[/] {escape(message)}", highlight=False)


class _ReadFailed(Exception):
    """The history file could not be opened or read (the cause says why)."""


def _lines(file: Path) -> Iterator[bytes]:
    try:
        handle = sys.stdin.buffer if str(file) == "-" else file.open("rb")
    except OSError as problem:
        raise _ReadFailed from problem
    with handle:
        while True:
            try:
                text = handle.readline()
            except OSError as problem:
                raise _ReadFailed from problem
            if not text:
                return
            yield text


def _silence_stdout() -> None:
    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _rules_config(path: Path, err: Console) -> RulesConfig:
    """Thresholds and doors from a gateway config, or from a TOML of only [rules] / [[doors]]."""
    from gateway.rules_runtime import rules_config

    try:
        return rules_config(_gateway_config(path))
    except ConfigError as problem:
        _error(err, str(problem))
        raise typer.Exit(2) from problem
    except ValueError as problem:  # a door schedule or night time the rules cannot parse
        _error(err, f"{path}: {problem}")
        raise typer.Exit(2) from problem


def _gateway_config(path: Path) -> GatewayConfig:
    """A whole gateway config (it has [site]), or one holding only ``[rules]`` and ``[[doors]]``
    validated with the gateway's own models under a stand-in site."""
    try:
        text = path.read_text("utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return load_config(path)  # it says why, with the line
    if "site" in data:
        return load_config(path)
    unknown = sorted(set(data) - {"rules", "doors"})
    if unknown:
        problem = (
            f"a rules-only file holds [rules] and [[doors]], not {', '.join(unknown)}"
            " (or give a whole gateway config with [site])"
        )
        raise ConfigError(path, [(None, problem)])
    site = {"site": {"site": "replay", "gateway": "replay"}}
    try:
        return GatewayConfig.model_validate({**site, **data})
    except ValidationError as problem:
        raise ConfigError(path, _problems(problem, KeyLines(text))) from problem


def _print_table(source: str, rows: list[dict[str, Any]], lines: int) -> None:
    console = Console()
    table = Table(title=t("replay.title", file=source), title_justify="left")
    for key in ("time", "event", "what", "subject", "detail"):
        table.add_column(t(f"replay.col.{key}"))
    counts = {"decision": 0, "alert": 0, "clear": 0}
    for row in rows:
        head = next(k for k in counts if k in row)
        counts[head] += 1
        when = datetime.fromisoformat(row["at"]).strftime("%m-%d %H:%M:%S")
        table.add_row(when, *_cells(head, row[head]))  # the cells escape what users wrote
    console.print(table)
    console.print(
        t("replay.summary", lines=lines, decisions=counts["decision"], alerts=counts["alert"],
          clears=counts["clear"])
    )  # fmt: skip


def _cells(head: str, body: dict[str, Any]) -> tuple[str, str, str, str]:
    if head == "decision":
        verdict = body["verdict"]
        style = (
            "green" if body["allow"] else "yellow" if verdict == "awaiting_second_factor" else "red"
        )
        word = t("replay.awaiting") if verdict == "awaiting_second_factor" else t(verdict)
        person = body["occupant"] or "-"
        if body["unit"]:
            person += f" ({body['unit']})"
        reasons = t("replay.sep").join(_reason(r) for r in body["reasons"])
        where = escape(f"{body['door']}: {person}")
        return escape(body["event"] or ""), f"[{style}]{word}[/]", where, reasons
    style = "bold red" if head == "alert" else "green"
    subject = " ".join(f"{body[k]}" for k in SUBJECTS if body.get(k) is not None)
    detail = t(f"replay.kind.{body['kind']}")
    if "count" in body:
        detail += " " + t("replay.count_limit", count=body["count"], limit=body.get("limit", "-"))
    evidence = escape(",".join(body["evidence"]))
    return evidence, f"[{style}]{t(f'replay.{head}')}[/]", escape(subject or "-"), detail


def _reason(code: str) -> str:
    text = t(code)
    return t(f"replay.reason.{code}") if text == code else text
