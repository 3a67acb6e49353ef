"""Web helpers shared by the portal and the station dashboard: language, CSRF, rendering."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from rules import i18n
from sync.webauth import csrf_token, new_token

LANG_COOKIE = "lang"
PRE_COOKIE = "dg_pre"
LANGS = ("zh", "en")

#: The reason codes of `rules.colour` (``pending:2``, ``door_forced:main``) in words; ``{n}`` is
#: the part after the colon. Both web apps show them beside a unit's colour.
_REASONS: dict[str, tuple[str, str]] = {
    "reason.overcrowding": ("今晚超员", "overcrowded tonight"),
    "reason.over_capacity": ("登记人数超过限住", "more registered than allowed"),
    "reason.unregistered_resident": ("疑似未登记居住 {n} 人", "{n} suspected unregistered"),
    "reason.door_forced": ("门 {n} 被强行打开", "door {n} forced open"),
    "reason.pending": ("{n} 人待审批", "{n} awaiting approval"),
    "reason.vacancy": ("{n} 人长期未归", "{n} not seen for days"),
    "reason.tenancy_expiring": ("{n} 人租期将到", "{n} tenancies ending"),
    "reason.approval_overdue": ("{n} 人审批超时", "{n} approvals overdue"),
    "reason.door_held": ("门 {n} 长时间未关", "door {n} held open"),
    "reason.tailgating": ("门 {n} 尾随进入", "tailgating at door {n}"),
}
i18n.add_messages({key: {"zh": zh, "en": en} for key, (zh, en) in _REASONS.items()})


def reason_text(code: str) -> str:
    """A unit colour reason code (``pending:2``, ``door_forced:main``) in the current language."""
    kind, _, value = code.partition(":")
    return i18n.t("reason." + kind, n=value)


def language(lang: str) -> contextlib.AbstractContextManager[None]:
    """Render in `lang` (this request only; the process's language is untouched)."""
    return i18n.language(lang)


def request_language(request: Request) -> str:
    """``?lang=`` first, then the cookie, else Simplified Chinese."""
    for value in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if value in LANGS:
            return str(value)
    return "zh"


def make_env(folder: Path) -> Environment:
    """A Jinja environment with autoescaping and the translation function ``t``."""
    env = Environment(
        loader=FileSystemLoader(str(folder)), autoescape=select_autoescape(["html"])
    )
    env.globals["t"] = i18n.t
    return env


class Renderer:
    """Renders templates in the request's language with its CSRF token.

    Args:
        env: the Jinja environment.
        secret: the CSRF/HMAC secret.
        session_cookie: the name of the session cookie.
    """

    def __init__(self, env: Environment, secret: bytes, session_cookie: str) -> None:
        self.env = env
        self.secret = secret
        self.session_cookie = session_cookie

    def cookie_for_csrf(self, request: Request) -> tuple[str, bool]:
        """The cookie value the CSRF token binds to, and whether a new pre-session cookie is due."""
        session = request.cookies.get(self.session_cookie)
        if session:
            return session, False
        pre = request.cookies.get(PRE_COOKIE)
        if pre:
            return pre, False
        pre = getattr(request.state, "pre_cookie", None) or new_token()
        request.state.pre_cookie = pre
        return pre, True

    def render(
        self, request: Request, name: str, context: dict[str, Any], status: int = 200
    ) -> Response:
        """An HTML response for template `name`."""
        lang = request_language(request)
        cookie, fresh = self.cookie_for_csrf(request)
        with language(lang):
            html = self.env.get_template(name).render(
                request=request,
                lang=lang,
                other_lang="en" if lang == "zh" else "zh",
                csrf=csrf_token(self.secret, cookie),
                **context,
            )
        response = HTMLResponse(html, status_code=status)
        if fresh:
            response.set_cookie(PRE_COOKIE, cookie, httponly=True, samesite="strict")
        if request.query_params.get("lang") in LANGS:
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax")
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


class Lazy:
    """A message translated when the page is rendered (in the request's language), not before.

    Args:
        key: the message key.
        values: values for its placeholders.
    """

    def __init__(self, key: str, **values: object) -> None:
        self.key = key
        self.values = values

    def __str__(self) -> str:
        return i18n.t(self.key, **self.values)

    def __contains__(self, text: str) -> bool:
        return text in str(self)
