"""`doorgate demo` as a newcomer runs it: a child process, its output and exit status."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from datetime import date

import pytest

from gateway.demo import demo_id_number

DOORGATE = [sys.executable, "-c", "from gateway.cli import main; main()"]
SUMMARY = re.compile(r"^sent=(\d+) received=(\d+) lost=(\d+)$", re.MULTILINE)


def run_demo(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "160", "DOORGATE_LANG": "en"}
    return subprocess.run(
        [*DOORGATE, "demo", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def test_demo_with_embedded_broker() -> None:
    result = run_demo("--taps", "7")
    assert result.returncode == 0, result.stdout + result.stderr
    match = SUMMARY.search(result.stdout)
    assert match, result.stdout
    assert match.groups() == ("8", "8", "0")  # 7 card decisions and the tenant's face
    faces = [" ".join(line.split()) for line in result.stdout.splitlines() if "(face)" in line]
    assert len(faces) == 1, result.stdout  # the tenant once; not the stranger, not the photo
    assert "张伟" in faces[0]
    assert "approved occupant" in faces[0]
    out = " ".join(result.stdout.split())
    for expected in (
        "approved occupant",
        "pending approval",
        "moved out",
        "tenancy expired",
        "unknown card",
    ):
        assert expected in out
    assert "Traceback" not in result.stderr


@pytest.mark.broker
def test_demo_survives_a_broker_restart(broker) -> None:
    if broker.kind != "mosquitto":
        pytest.skip("needs a broker that keeps sessions across restarts (Mosquitto)")
    env = {**os.environ, "COLUMNS": "160", "DOORGATE_LANG": "en"}
    proc = subprocess.Popen(
        [*DOORGATE, "demo", "--taps", "14", "--no-camera", "--broker", broker.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    time.sleep(3.0)
    broker.stop()
    time.sleep(2.5)
    broker.start()
    out, err = proc.communicate(timeout=150)
    assert proc.returncode == 0, out + err
    match = SUMMARY.search(out)
    assert match, out
    assert match.group(1) == match.group(2) == "14"
    assert match.group(3) == "0"
    assert "unreachable" in err  # the outage really happened and was reported


def test_demo_with_the_id_card_reader() -> None:
    result = run_demo("--reader", "idcard", "--taps", "4", "--no-camera")
    assert result.returncode == 0, result.stdout + result.stderr
    match = SUMMARY.search(result.stdout)
    assert match, result.stdout
    assert match.groups() == ("4", "4", "0")
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    number = demo_id_number(date(1990, 3, 1), 100)  # 张伟's, as the demo seeds him
    # 张伟 presents his resident ID card (shown masked to its last 4) and the door opens.
    granted = [line for line in lines if "张伟" in line and "approved occupant" in line]
    assert granted, result.stdout
    assert f"*{number[-4:]} " in granted[0]
    assert number not in result.stdout  # the ID number itself is never printed
    assert "Traceback" not in result.stderr


def test_demo_serves_the_portal_and_the_dashboard_with_its_logins() -> None:
    import httpx

    env = {**os.environ, "COLUMNS": "200", "DOORGATE_LANG": "en", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [*DOORGATE, "demo", "--forever", "--no-camera"], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert proc.stdout is not None
        urls: dict[str, str] = {}
        deadline = time.monotonic() + 60
        while len(urls) < 2 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            found = re.search(r"(landlord portal|station dashboard): (http://\S+)\s+sign in as "
                              r"(\w+) / (\S+)", line)
            if found:
                urls[found.group(1)] = found.group(2)
                user, password = found.group(3), found.group(4)
        assert len(urls) == 2, urls
        for what, user, home, expect in (
            ("landlord portal", "landlord", "/units", "A-101"),
            ("station dashboard", "officer", "/", "demo-district/building-a"),
        ):
            with httpx.Client(base_url=urls[what], timeout=10) as web:
                login = web.get("/login")
                csrf = re.search(r'name="csrf" value="([^"]+)"', login.text)
                assert csrf, login.text
                signed = web.post("/login", data={"user": user, "password": password,
                                                  "csrf": csrf.group(1)})
                assert signed.status_code == 303, (what, signed.text)
                for _ in range(100):  # the dashboard lists a building once its events arrive
                    page = web.get(home)
                    if expect in page.text:
                        break
                    time.sleep(0.1)
                assert expect in page.text, (what, page.text)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        finally:
            proc.kill()
