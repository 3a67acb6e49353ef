"""Every scenario under scenarios/ replays to exactly the decisions and alerts it expects."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.scenario import check, parse_scenario, replay

SCENARIOS = sorted((Path(__file__).parent / "scenarios").glob("*.toml"))


def test_there_are_enough_scenarios() -> None:
    assert len(SCENARIOS) >= 8


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario(path: Path) -> None:
    scenario = parse_scenario(path.read_text(encoding="utf-8"), source=path.name)
    outputs = replay(scenario)
    problems = check(scenario, outputs)
    assert not problems, f"{scenario.title}\n" + "\n".join(problems)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_expects_something(path: Path) -> None:
    scenario = parse_scenario(path.read_text(encoding="utf-8"), source=path.name)
    assert scenario.decisions or scenario.alerts
