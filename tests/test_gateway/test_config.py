"""Config validation: the bad key and its line, secrets only from files."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.config import ConfigError, broker_settings, load_config, read_secret

GOOD = """\
[site]
site = "xh-01"
gateway = "bldg-12"

[store]
path = "gw.db"

[broker]
url = "mqtt://127.0.0.1:1883"
password_file = "broker_pw"

[[readers]]
name = "entrance"
kind = "rdm6300"
port = "/dev/ttyUSB0"
"""

runner = CliRunner()


def write(tmp_path: Path, text: str, key: bool = True) -> Path:
    path = tmp_path / "doorgate.toml"
    path.write_text(text, encoding="utf-8")
    if key:
        (tmp_path / "hash_key").write_text("k" * 32)
        (tmp_path / "broker_pw").write_text("s3cret\n")
    return path


def test_good_config_loads_and_resolves_paths(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    config = load_config(path)
    assert config.store.path == tmp_path / "gw.db"
    assert config.readers[0].door == "main"
    settings = broker_settings(config, path)
    assert settings.password == "s3cret"
    assert settings.client_id == "doorgate-xh-01-bldg-12"
    result = runner.invoke(app, ["check-config", str(path)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


@pytest.mark.parametrize(
    ("change", "line", "text"),
    [
        (('kind = "rdm6300"', 'kind = "nfc"'), 14, "readers[0].kind"),
        (('port = "/dev/ttyUSB0"', 'port = "/dev/ttyUSB0"\nbaud = "fast"'), 16, "readers[0].baud"),
        (("[store]", '[store]\ncolour = "red"'), 6, "store.colour: unknown key"),
        (('password_file = "broker_pw"', 'password = "hunter2"'), 10, "secrets are never written"),
        (('site = "xh-01"', 'site = "xh/01"'), 1, "site must be"),
        (('url = "mqtt://127.0.0.1:1883"', 'url = "http://x"'), 8, "broker URL must look like"),
        (('gateway = "bldg-12"', 'gateway = "bldg-12"\n[oops'), 4, "line 4"),
    ],
)
def test_bad_config_names_key_and_line(
    tmp_path: Path, change: tuple[str, str], line: int, text: str
) -> None:
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert any(found == line and text in msg for found, msg in info.value.problems), info.value
    result = runner.invoke(app, ["check-config", str(path)])
    assert result.exit_code == 2
    assert f"{path}:{line}:" in result.output
    assert text in result.output


def test_missing_secret_file_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD, key=False)
    result = runner.invoke(app, ["check-config", str(path)])
    assert result.exit_code == 2
    assert "hash_key" in result.output


def test_secrets_come_from_credentials_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "hash_key").write_text("from-systemd-credentials")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert read_secret("hash_key", tmp_path / "doorgate.toml") == b"from-systemd-credentials"


def test_unreadable_and_non_utf8_configs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff\xfe[site]")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(bad)


def test_reader_must_name_a_configured_door(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + 'door = "back"\n')
    with pytest.raises(ConfigError, match="names door 'back'"):
        load_config(path)


def test_shipped_example_config_is_valid() -> None:
    example = Path(__file__).parents[2] / "deploy" / "doorgate.example.toml"
    config = load_config(example)
    assert config.station.approval == "station"
    assert [r.kind for r in config.readers] == ["rdm6300", "idcard"]
    assert config.cameras[0].door == "main"
