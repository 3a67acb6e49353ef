#!/usr/bin/env python3
"""Bootstrap and run doorgate from a fresh clone with nothing but Python 3.11+ and pip.

    python3 dev.py demo [ARGS...]   # install if needed, then `doorgate demo ARGS...`
    python3 dev.py test [ARGS...]   # install if needed, lint, type-check, then pytest ARGS...
    python3 dev.py run ARGS...      # any `doorgate` command inside the project environment

uv is installed into `.tools/` with pip, then `uv sync --locked` builds `.venv/` from `uv.lock`
(the lock overrides face_recognition's `dlib` with the prebuilt `dlib-bin`, so nothing compiles).
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
TOOLS = ROOT / ".tools"
VENV = ROOT / ".venv"
UV_SPEC = "uv>=0.5,<1"


def _bin(env: Path, name: str) -> Path:
    return env / ("Scripts" if os.name == "nt" else "bin") / name


def _run(cmd: list[str], env: dict[str, str] | None = None) -> int:
    return subprocess.call(cmd, cwd=ROOT, env=env)


def ensure_uv() -> Path:
    uv = _bin(TOOLS, "uv")
    if not uv.exists():
        print("dev.py: installing uv into .tools/ (first run only)", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(TOOLS)
        if _run([str(_bin(TOOLS, "python")), "-m", "pip", "install", "-q", UV_SPEC]):
            sys.exit("dev.py: could not install uv with pip; check access to the package index")
    return uv


def uv_env() -> dict[str, str]:
    env = dict(os.environ)
    # Never fetch a Python interpreter: use the one running this script.
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    env.setdefault("UV_PYTHON", sys.executable)
    env["UV_PROJECT_ENVIRONMENT"] = str(VENV)
    return env


def sync(uv: Path) -> None:
    if _run([str(uv), "sync", "--locked", "--quiet"], env=uv_env()):
        sys.exit("dev.py: `uv sync --locked` failed (see above)")


def run_tests(args: list[str]) -> int:
    py = str(_bin(VENV, "python"))
    checks = [
        [py, "-m", "ruff", "check", "."],
        [py, "-m", "mypy"],
        [str(_bin(VENV, "lint-imports"))],
    ]
    for cmd in checks:
        print(
            "dev.py:",
            " ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd)),
            flush=True,
        )
        if rc := _run(cmd):
            return rc
    return _run([py, "-m", "pytest", *args])


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "run"}:
        print(__doc__)
        return 2
    uv = ensure_uv()
    sync(uv)
    command, rest = argv[0], argv[1:]
    if command == "test":
        return run_tests(rest)
    doorgate = str(_bin(VENV, "doorgate"))
    return _run([doorgate, *rest] if command == "run" else [doorgate, "demo", *rest])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
