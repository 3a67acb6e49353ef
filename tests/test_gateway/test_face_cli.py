"""The face commands end to end: real photos, a real config and SQLite store, typer's runner."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import cv2
import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gateway.cli_face import bench_app, enrol_app, face_app
from gateway.faces import collect_folder, parse_csv
from rules.model import Unit
from sync.store import Store

FACES = Path(__file__).parent.parent / "fixtures" / "faces"
SECRET = b"0123456789abcdef0123456789abcdef"

app = typer.Typer()
app.add_typer(face_app, name="face")
app.add_typer(enrol_app, name="enrol")
app.add_typer(bench_app, name="bench")
runner = CliRunner()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "hash_key").write_bytes(SECRET)
    path = tmp_path / "doorgate.toml"
    path.write_text('[site]\nsite = "s1"\ngateway = "g1"\n[store]\npath = "g.db"\n')
    store = Store.open(tmp_path / "g.db", SECRET)
    store.add_unit(Unit("A-101", "A", 1, "101", 2))
    store.add_occupant(
        "A-101", "Obama", "11010519491231002X", date(2025, 1, 1), None, occupant_id="oa"
    )
    store.close()
    return path


def test_verify_same_and_different_people_as_json() -> None:
    same = runner.invoke(
        app, ["face", "verify", str(FACES / "obama.jpg"), str(FACES / "obama2.jpg"), "--json"]
    )
    diff = runner.invoke(
        app, ["face", "verify", str(FACES / "obama.jpg"), str(FACES / "biden.jpg"), "--json"]
    )
    assert same.exit_code == 0 and diff.exit_code == 0, same.output + diff.output
    assert json.loads(same.stdout)["match"] is True
    assert json.loads(diff.stdout) == {"distance": pytest.approx(0.84, abs=0.05), "match": False}


def test_verify_exits_2_naming_the_photo_without_a_usable_face() -> None:
    result = runner.invoke(
        app, ["face", "verify", str(FACES / "two_people.jpg"), str(FACES / "obama.jpg")]
    )
    assert result.exit_code == 2
    assert "two_people.jpg" in result.output and "2 faces" in result.output


def test_enrol_then_identify(config: Path, tmp_path: Path) -> None:
    enrolled = runner.invoke(
        app,
        [
            "enrol",
            "face",
            "--occupant",
            "oa",
            str(FACES / "obama2.jpg"),
            str(FACES / "obama3.jpg"),
            "-c",
            str(config),
        ],
    )
    assert enrolled.exit_code == 0, enrolled.output
    assert "2 photos enrolled, 0 refused" in enrolled.output
    found = runner.invoke(
        app, ["face", "identify", str(FACES / "obama.jpg"), "-c", str(config), "--json"]
    )
    assert json.loads(found.stdout)["occupant_id"] == "oa"
    other = runner.invoke(
        app, ["face", "identify", str(FACES / "biden.jpg"), "-c", str(config), "--json"]
    )
    assert json.loads(other.stdout)["occupant_id"] is None


def test_a_wrong_match_marked_from_the_cli_no_longer_identifies(config: Path) -> None:
    def identify() -> dict[str, object]:
        result = runner.invoke(
            app, ["face", "identify", str(FACES / "obama.jpg"), "-c", str(config), "--json"]
        )
        assert result.exit_code == 0, result.output
        found: dict[str, object] = json.loads(result.stdout)
        return found

    photos = [str(FACES / "obama2.jpg"), str(FACES / "obama3.jpg")]
    enrolled = runner.invoke(app, ["enrol", "face", "--occupant", "oa", *photos, "-c", str(config)])
    assert enrolled.exit_code == 0, enrolled.output
    assert identify()["occupant_id"] == "oa"

    marked = runner.invoke(
        app, ["face", "wrong", "--occupant", "oa", str(FACES / "obama.jpg"), "-c", str(config)]
    )
    assert marked.exit_code == 0, marked.output
    assert "obama.jpg: recorded as NOT occupant oa" in marked.output
    assert identify() == {"occupant_id": None, "distance": None, "vetoed": ["oa"]}

    store = Store.open(config.parent / "g.db", SECRET)
    try:  # only the 512-byte encoding is kept, flagged negative; no image anywhere
        rows = store.db.execute(
            "SELECT negative, source, length(encoding) FROM face_templates ORDER BY id"
        ).fetchall()
    finally:
        store.close()
    assert [tuple(r) for r in rows][-1] == (1, "wrong-match", 512)
    assert not [p for p in config.parent.rglob("*") if p.suffix.lower() in {".jpg", ".png"}]


def test_face_wrong_refuses_unknown_occupants_and_unusable_photos(config: Path) -> None:
    nobody = runner.invoke(
        app, ["face", "wrong", "--occupant", "zz", str(FACES / "obama.jpg"), "-c", str(config)]
    )
    assert nobody.exit_code == 1 and "zz" in nobody.output
    two = runner.invoke(
        app, ["face", "wrong", "--occupant", "oa", str(FACES / "two_people.jpg"), "-c", str(config)]
    )
    assert two.exit_code == 2 and "two_people.jpg" in two.output


def test_enrol_refuses_bad_photos_with_file_and_reason(config: Path, tmp_path: Path) -> None:
    blurred = tmp_path / "blurred.jpg"
    cv2.imwrite(str(blurred), cv2.GaussianBlur(cv2.imread(str(FACES / "obama.jpg")), (0, 0), 4))
    result = runner.invoke(
        app,
        [
            "enrol",
            "face",
            "--occupant",
            "oa",
            str(blurred),
            str(FACES / "two_people.jpg"),
            "-c",
            str(config),
        ],
    )
    assert result.exit_code == 1
    assert "blurred.jpg: photo too blurry" in result.output
    assert "two_people.jpg: 2 faces" in result.output


def test_bulk_from_csv_and_folder(config: Path, tmp_path: Path) -> None:
    csv_file = tmp_path / "list.csv"
    csv_file.write_text(f"occupant_id,path\noa,{FACES / 'obama2.jpg'}\nnobody,x.jpg\n")
    result = runner.invoke(app, ["enrol", "bulk", str(csv_file), "-c", str(config)])
    assert "1 photos enrolled, 1 refused" in result.output
    assert "no occupant with id nobody" in result.output
    folder = tmp_path / "photos"
    (folder / "oa").mkdir(parents=True)
    shutil.copy(FACES / "obama3.jpg", folder / "oa" / "1.jpg")
    shutil.copy(FACES / "obama_small.jpg", folder / "oa_small.jpg")
    result = runner.invoke(app, ["enrol", "bulk", str(folder), "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert "2 photos enrolled" in result.output


def test_folder_names_pick_the_longest_known_occupant(tmp_path: Path) -> None:
    for name in ("a_b_1.jpg", "a_2.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    pairs = collect_folder(tmp_path, {"a", "a_b"})
    assert [(o, p.name) for o, p in pairs] == [("a", "a_2.jpg"), ("a_b", "a_b_1.jpg")]


_ids = st.text(
    st.characters(categories=["L", "N"], include_characters="-_"), min_size=1, max_size=12
).filter(lambda s: s.strip() == s and s.lower() != "occupant_id")
_paths = st.text(
    st.characters(categories=["L", "N"], include_characters="-_./ "), min_size=1, max_size=20
).filter(lambda s: s.strip() == s and s.strip())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_ids, _paths), max_size=8), st.booleans())
def test_csv_round_trip(rows: list[tuple[str, str]], header: bool) -> None:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf)
    if header:
        writer.writerow(["occupant_id", "path"])
    writer.writerows(rows)
    base = Path("/base")
    assert parse_csv(buf.getvalue(), base=base) == [
        (o, p if (p := Path(path)).is_absolute() else base / p) for o, path in rows
    ]


@pytest.mark.parametrize("text", ["a\n", "a,b,c\n", ",x.jpg\n", "ok,1.jpg\nbad\n"])
def test_malformed_csv_names_the_line(text: str) -> None:
    with pytest.raises(ValueError, match="CSV line"):
        parse_csv(text, base=Path())


def test_every_command_has_help() -> None:
    for group in ("face", "enrol", "bench"):
        result = runner.invoke(app, [group, "--help"])
        assert result.exit_code == 0
    for args in (
        ["face", "verify"],
        ["face", "identify"],
        ["face", "wrong"],
        ["enrol", "face"],
        ["enrol", "bulk"],
        ["bench", "face"],
    ):
        result = runner.invoke(app, [*args, "--help"])
        assert result.exit_code == 0 and len(result.output) > 80
