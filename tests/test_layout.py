"""The five top-level packages resolve to this project, never to a namesake on PyPI."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["gateway", "drivers", "rules", "sync", "station"]


@pytest.mark.parametrize("name", PACKAGES)
def test_package_is_ours(name: str) -> None:
    spec = importlib.util.find_spec(name)
    assert spec is not None
    assert spec.origin is not None
    assert Path(spec.origin).resolve().is_relative_to(ROOT / name)


def test_wheel_lists_the_packages_explicitly() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == PACKAGES
    assert pyproject["project"]["scripts"] == {"doorgate": "gateway.cli:main"}
    for folder in ("deploy", "systemd", "tests"):
        assert not (ROOT / folder / "__init__.py").exists()


def test_readme_quick_start_has_exactly_two_commands() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1]
    block = section.split("```", 2)[1]
    lines = [line for line in block.splitlines()[1:] if line.strip()]
    assert lines == ["python3 dev.py demo", "python3 dev.py test"]
