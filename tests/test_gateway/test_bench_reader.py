"""`doorgate bench reader` on a small building, and `doorgate bench fuzz` on a few frames."""

from __future__ import annotations

import json
import secrets
from datetime import date
from pathlib import Path

from typer.testing import CliRunner

from gateway.bench_reader import bench_id_number, bench_reader, card_uid, enrol_bulk, naive_resolver
from gateway.cli import app
from rules.model import CredentialKind, CredentialStatus, OccupantStatus
from sync.store import Store


def test_bulk_enrolment_resolves_like_cards_added_one_by_one(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "g.db", secrets.token_bytes(32))
    try:
        enrol_bulk(store, 50, date.today())
        uid = card_uid(37).hex()
        credential, occupant = store.resolve_card(CredentialKind.IC, uid)
        assert credential is not None and occupant is not None
        assert occupant.id == "b0000037"
        assert occupant.status is OccupantStatus.APPROVED
        assert credential.status is CredentialStatus.ACTIVE
        assert naive_resolver(store)(CredentialKind.IC, uid) == (credential, occupant)
        assert naive_resolver(store)(CredentialKind.IC, "67003B51C6") == (None, None)
        _, by_id = store.resolve_id_number(bench_id_number(37))
        assert by_id == occupant
        assert len(store.list_units()) == 13
    finally:
        store.close()


async def test_bench_reader_measures_every_tap_both_ways() -> None:
    result = await bench_reader(2_000, taps=20, naive_taps=5, seed=3)
    assert result["missed"] == []
    assert result["indexed"]["n"] == 20
    assert result["naive_full_scan"]["n"] == 5
    assert 0 < result["indexed"]["p50_ms"] <= result["indexed"]["p99_ms"]
    assert result["ratio_p50"] > 1  # a 2,000-row scan per card is already slower
    assert result["rules_tick_ms"]["with_roster_pass"] > 0
    json.dumps(result)


def test_fuzz_command_small_run() -> None:
    result = CliRunner().invoke(app, ["bench", "fuzz", "--frames", "2000", "--seed", "1"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    protocols = report["protocols"]
    assert set(protocols) == {"rdm6300", "idcard", "pn532", "wiegand", "osdp"}
    for name, counts in protocols.items():
        assert counts["frames"] == 2000, name
        assert counts["accepted"] + counts["rejected"] == 2000, name
        assert counts["accepted"] > 0 and counts["rejected"] > 0, name
        assert counts["failures"] == 0, name


def test_fuzz_reports_a_parser_that_accepts_a_bad_checksum(monkeypatch) -> None:
    from drivers import rdm6300
    from gateway.fuzz import run_fuzz

    def lenient(frame: bytes) -> rdm6300.Em4100Tag:
        if len(frame) != 14:
            raise rdm6300.FrameError("length", frame)
        data = bytes.fromhex(frame[1:11].decode("ascii", "replace"))  # ValueError: not ours
        return rdm6300.Em4100Tag(data[0], int.from_bytes(data[1:], "big"))

    monkeypatch.setattr(rdm6300, "parse_frame", lenient)
    report = run_fuzz(3000, ["rdm6300"], seed=2)
    assert not report["ok"]
    problems = " ".join(f["problem"] for f in report["failures"])
    assert "checksum" in problems or "ValueError" in problems
    assert all(bytes.fromhex(f["input_hex"]) for f in report["failures"])
