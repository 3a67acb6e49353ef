"""A web page's language is its own: the daemon's messages and other pages keep theirs."""

from __future__ import annotations

import asyncio

from rules.i18n import current_language, language, set_language, t


def test_language_block_does_not_leak_into_the_process_or_other_tasks() -> None:
    set_language("zh")
    try:
        seen: dict[str, str] = {}

        async def page(lang: str) -> None:
            with language(lang):
                await asyncio.sleep(0.01)  # another page renders meanwhile
                seen[lang] = t("state.online")

        async def both() -> None:
            await asyncio.gather(page("en"), page("zh"))

        asyncio.run(both())
        assert seen == {"en": "online", "zh": "在线"}
        assert current_language() == "zh" and t("state.online") == "在线"
    finally:
        set_language("en")
