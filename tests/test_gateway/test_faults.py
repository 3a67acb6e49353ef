"""SIGKILL the gateway at random points while events flow: nothing accepted may be lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.soak import run_kill_trials

pytestmark = [pytest.mark.broker, pytest.mark.slow]


async def test_twenty_sigkills_lose_nothing(tmp_path: Path, broker) -> None:
    result = await run_kill_trials(tmp_path, broker.url, trials=20, seed=7)
    assert result.accepted >= 40  # at least the two warm-up taps per trial got decided
    assert result.lost == 0, result
    assert result.received == result.accepted
    # Re-sends after a kill are bounded by what can be in flight (uplink window 50 per trial).
    assert result.duplicates <= 50 * result.trials
