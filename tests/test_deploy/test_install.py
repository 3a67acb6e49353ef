"""deploy/install.sh into a temporary root: files, modes, idempotence, a working config, units
that `systemd-analyze verify` accepts, and the units' sandbox scores."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "deploy" / "install.sh"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


def run_install(*args: str | Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_"))}
    uv = ROOT / ".tools" / "bin" / "uv"
    if uv.exists():
        env["UV"] = str(uv)
    proc = subprocess.run(
        args=["bash", str(INSTALL), *map(str, args)], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def snapshot(root: Path) -> dict[str, str]:
    """Every file outside the venv with its hash and mode."""
    out = {}
    for path in sorted(root.rglob("*")):
        if "venv" in path.parts or path.is_symlink() or not path.is_file():
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        out[str(path.relative_to(root))] = f"{digest} {oct(path.stat().st_mode & 0o777)}"
    return out


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """One real install (with the venv) run twice into the same root."""
    root = tmp_path_factory.mktemp("root")
    first = run_install("--root", root, "--prefix", "/opt/dg", "--site", "futian-03",
                        "--gateway", "building-a", "--broker", "mqtt://127.0.0.1:1883")
    before = snapshot(root)
    second = run_install("--root", root, "--prefix", "/opt/dg", "--site", "other", "--gateway", "x")
    assert snapshot(root) == before
    return root, first, second


def test_first_run_writes_everything_and_the_second_changes_nothing(installed) -> None:
    _, first, second = installed
    assert "generated /etc/doorgate/credentials/hash_key" in first
    assert "wrote /etc/doorgate/doorgate.toml" in first
    assert "not creating user doorgate" in first  # no etc/passwd in the temporary root
    assert "nothing changed" in second
    assert "kept /etc/doorgate/doorgate.toml" in second


def test_secrets_config_and_modes(installed) -> None:
    root, _, _ = installed
    creds = root / "etc/doorgate/credentials"
    key = (creds / "hash_key").read_text()
    assert re.fullmatch(r"[0-9a-f]{64}", key)  # 32 random bytes
    assert mode(creds) == 0o700 and mode(creds / "hash_key") == 0o600
    assert mode(root / "etc/doorgate") == 0o750
    config = root / "etc/doorgate/doorgate.toml"
    assert mode(config) == 0o640
    text = config.read_text()
    assert 'site = "futian-03"' in text and 'gateway = "building-a"' in text
    assert 'url = "mqtt://127.0.0.1:1883"' in text
    assert '# cert_file = "gateway.crt"' in text  # plain MQTT: no certificate files
    assert "# public_key_file" in text  # no station.pub yet
    assert mode(root / "var/lib/doorgate") == 0o700
    rules = root / "etc/udev/rules.d/99-doorgate.rules"
    assert rules.read_bytes() == (ROOT / "deploy/99-doorgate.rules").read_bytes()


def test_the_installed_venv_validates_the_written_config(installed) -> None:
    root, _, _ = installed
    doorgate = root / "opt/dg/venv/bin/doorgate"
    env = {**os.environ, "CREDENTIALS_DIRECTORY": str(root / "etc/doorgate/credentials"),
           "DOORGATE_LANG": "en"}
    proc = subprocess.run(check=False, args=[str(doorgate), "check-config", str(root / "etc/doorgate/doorgate.toml")],
                          capture_output=True, text=True, env=env, cwd=root, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "valid" in proc.stdout
    # The venv holds its own copy of doorgate, not this checkout.
    origin = subprocess.run(args=[str(root / "opt/dg/venv/bin/python"), "-c",
                             "import gateway; print(gateway.__file__)"],
                            capture_output=True, text=True, cwd=root, check=True).stdout
    assert origin.startswith(str(root / "opt/dg/venv"))


def test_units_are_installed_with_the_prefix(installed) -> None:
    root, _, _ = installed
    unit = (root / "etc/systemd/system/doorgate.service").read_text()
    assert "/opt/doorgate" not in unit
    assert "ExecStart=/opt/dg/venv/bin/doorgate run" in unit
    assert "ExecStartPre=/opt/dg/venv/bin/doorgate check-config /etc/doorgate/doorgate.toml" in unit
    for line in ("Type=notify", "NotifyAccess=main", "WatchdogSec=30", "Restart=always",
                 "LoadCredential=hash_key:/etc/doorgate/credentials/hash_key",
                 "ProtectSystem=strict", "DevicePolicy=closed", "CapabilityBoundingSet="):
        assert line in unit.splitlines()
    station = (root / "etc/systemd/system/doorgate-station.service").read_text()
    assert "ExecStart=/opt/dg/venv/bin/doorgate station run" in station


@needs_analyze
def test_systemd_analyze_verify_accepts_the_installed_units(installed) -> None:
    root, _, _ = installed
    # verify --root needs the distribution's own targets (sysinit.target…) inside the root.
    system = root / "usr/lib/systemd/system"
    if not system.exists():
        shutil.copytree("/usr/lib/systemd/system", system, symlinks=True)
    proc = subprocess.run(check=False, args=[ANALYZE, "verify", f"--root={root}", "doorgate.service",
                           "doorgate-station.service"], capture_output=True, text=True, timeout=60)
    # verify exits 0 on unknown keys and bad values too: any output is a finding.
    assert proc.returncode == 0 and not proc.stderr.strip() and not proc.stdout.strip(), proc.stderr


@needs_analyze
@pytest.mark.parametrize("unit", ["doorgate.service", "doorgate-station.service"])
def test_sandbox_exposure_is_at_most_3(unit: str) -> None:
    proc = subprocess.run(check=False, args=[ANALYZE, "security", "--offline=true", str(ROOT / "systemd" / unit)],
                          capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    assert float(match.group(1)) <= 3.0


def test_credentials_are_copied_once_and_loaded_by_a_drop_in(tmp_path: Path) -> None:
    certs = tmp_path / "pki"
    certs.mkdir()
    for name in ("ca.crt", "gateway.crt", "gateway.key", "station.pub"):
        (certs / name).write_text(name)
    root = tmp_path / "root"
    out = run_install("--root", root, "--no-venv", "--credentials-from", certs)
    assert "copied credential gateway.key" in out
    creds = root / "etc/doorgate/credentials"
    assert mode(creds / "gateway.key") == 0o600 and mode(creds / "ca.crt") == 0o644
    dropin = (root / "etc/systemd/system/doorgate.service.d/credentials.conf").read_text()
    assert "LoadCredential=gateway.key:/etc/doorgate/credentials/gateway.key" in dropin
    assert "LoadCredential=station.pub:/etc/doorgate/credentials/station.pub" in dropin
    assert "hash_key" not in dropin.split("[Service]")[1]  # already in the unit
    text = (root / "etc/doorgate/doorgate.toml").read_text()
    assert '\npublic_key_file = "station.pub"' in text and '\ncert_file = "gateway.crt"' in text
    (certs / "gateway.key").write_text("rotated")
    run_install("--root", root, "--no-venv", "--credentials-from", certs)
    assert (creds / "gateway.key").read_text() == "gateway.key"  # never overwritten


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("useradd"), reason="needs root and useradd")
def test_service_user_is_created_in_a_root_with_etc_passwd(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (etc / "group").write_text("root:x:0:\ndialout:x:20:\nvideo:x:44:\n")
    (etc / "gshadow").write_text("root:*::\ndialout:*::\nvideo:*::\n")
    out = run_install("--root", tmp_path, "--no-venv")
    assert "created group gpio" in out and "created user doorgate" in out
    groups = (etc / "group").read_text()
    for name in ("dialout", "video", "gpio"):
        assert re.search(rf"^{name}:x:\d+:doorgate$", groups, re.M)
    user = next(line for line in (etc / "passwd").read_text().splitlines()
                if line.startswith("doorgate:")).split(":")
    creds = tmp_path / "etc/doorgate/credentials"
    assert creds.stat().st_uid == int(user[2])
    assert (creds / "hash_key").stat().st_uid == int(user[2])
    assert "created" not in run_install("--root", tmp_path, "--no-venv")


def test_udev_rules_name_the_usual_usb_serial_chips() -> None:
    text = (ROOT / "deploy/99-doorgate.rules").read_text()
    for vendor, product in [("1a86", "7523"), ("10c4", "ea60"), ("0403", "6001"), ("067b", "2303")]:
        assert f'ENV{{ID_VENDOR_ID}}=="{vendor}", ENV{{ID_MODEL_ID}}=="{product}"' in text
    assert 'SYMLINK+="doorgate/$env{DOORGATE_CHIP}-$env{ID_SERIAL_SHORT}"' in text
    pair = re.compile(r'^[A-Z_]+(\{[A-Za-z_]+\})?(==|!=|=|\+=|:=)"[^"]*"$')
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            for item in line.split(", "):
                assert pair.match(item), item
