"""Shared fixtures of the driver tests: every simulator a test plugged in is unplugged after it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from drivers.simulators.pty import PtyDevice

FIXTURES = Path(__file__).parent.parent / "fixtures" / "readers"

# Parsers are cheap; keep property tests quick so the whole drivers suite stays well under 60 s.
settings.register_profile(
    "drivers", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("drivers")


@pytest.fixture(autouse=True)
def _unplug_simulators() -> Iterator[None]:
    yield
    PtyDevice.unplug_all()


@pytest.fixture
def port(tmp_path: Path) -> Path:
    """A stable symlink path for a simulated USB-serial reader."""
    return tmp_path / "ttyREADER"


def load_fixture(model: str, name: str) -> Any:
    """A JSON fixture from tests/fixtures/readers/<model>/<name>."""
    return json.loads((FIXTURES / model / name).read_text(encoding="utf-8"))
