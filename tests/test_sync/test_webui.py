"""Shared web helpers: the password prompt and the colour reasons both apps show."""

from __future__ import annotations

import io

import pytest

from rules.i18n import language
from sync import webui


def test_read_password_from_stdin_or_the_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse\nnext line\n"))
    assert webui.read_password(True, "Password") == "correct horse"
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return "typed secret"

    monkeypatch.setattr("getpass.getpass", prompt)
    assert webui.read_password(False, "密码") == "typed secret"
    assert asked == ["密码: "]


def test_reason_codes_in_both_languages() -> None:
    with language("en"):
        assert webui.reason_text("pending:2") == "2 awaiting approval"
        assert webui.reason_text("door_forced:main") == "door main forced open"
        assert webui.reason_text("overcrowding") == "overcrowded tonight"
    with language("zh"):
        assert webui.reason_text("door_held:main") == "门 main 长时间未关"
