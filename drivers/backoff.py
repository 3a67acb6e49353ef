"""Jittered, capped exponential backoff for reconnect loops."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    """Seconds to wait before reconnect attempt `attempt` (0-based), with full jitter.

    Full jitter keeps a building's worth of gateways from reconnecting in lockstep after a
    broker restart.
    """
    ceiling = min(cap, base * (2 ** min(attempt, 16)))
    return random.uniform(ceiling / 2, ceiling)
