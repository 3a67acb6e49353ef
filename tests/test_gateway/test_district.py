"""The district simulation at a small size: many gateways, shared-subscription stations, no loss."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_small_district_loses_nothing(broker, tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gateway", "bench", "district", "--gateways", "20", "--stations", "2",
         "--rate", "2", "--duration", "3", "--broker", broker.url, "--json"],
        capture_output=True, text=True, timeout=90, cwd=tmp_path, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["gateways"] == 20 and result["stations"] == 2
    assert result["sent"] > 40 and result["lost"] == 0 and result["connect_errors"] == 0
    assert result["stored"] == result["sent"]
    assert sum(result["per_station"]) >= result["stored"]
    assert all(n > 0 for n in result["per_station"])  # the shared subscription split the load
    assert set(result["latency_ms"]) == {"p50", "p95", "p99", "max"}
    assert 0 < result["latency_ms"]["p50"] <= result["latency_ms"]["p99"] < 5000
    assert result["events_per_s"] > 0
