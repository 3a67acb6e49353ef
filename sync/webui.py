"""Web helpers shared by the portal and the station dashboard: language, CSRF, pages, sign-in."""

from __future__ import annotations

import contextlib
import getpass
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from rules import i18n
from sync.webauth import RateLimiter, check_csrf, csrf_token, new_token

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


def static_files(folder: Path) -> StaticFiles:
    """An app's ``/static`` files: its own `folder`, then the stylesheet both apps share.

    ``base.css`` (``sync/webui_static``, shipped in the ``sync`` package) holds the common look;
    each app's base template links it before its own stylesheet.
    """
    return StaticFiles(directory=folder, packages=[("sync", "webui_static")])


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


class Accounts(Protocol):
    """The account store behind a web app's sign-in (`PortalStore`, the station's `WebStore`)."""

    def authenticate(self, name: str, password: str) -> dict[str, Any] | None:
        """The account when `password` is right, else None."""

    def create_session(self, user: str) -> str:
        """A new session for `user`; the token for the cookie."""

    def session_user(self, token: str) -> dict[str, Any] | None:
        """The account of a live session, or None."""

    def end_session(self, token: str) -> None:
        """Forget a session."""


#: Renders a page: ``render(request, template, status, **context)``.
PageRender = Callable[..., Response]


@dataclass(frozen=True, slots=True)
class SignInMessages:
    """The message keys a sign-in page shows.

    Attributes:
        rate_limited: too many failures (placeholder ``{minutes}``).
        bad_login: wrong user name or password.
    """

    rate_limited: str
    bad_login: str


class SignIn:
    """Sessions, CSRF-checked forms, sign-in and sign-out, the same for both web apps.

    The session cookie is ``HttpOnly`` and ``SameSite=Strict``; sign-in is rate-limited per
    account and per address (``429`` once blocked), a wrong password answers ``401`` and a
    right one ``303`` to `home`.

    Args:
        accounts: the account store.
        secret: the CSRF key.
        cookie: the session cookie's name.
        limiter: the sign-in rate limiter.
        render: the app's page renderer (``login.html`` is rendered with ``user=None``).
        messages: the app's message keys.
        home: where a successful sign-in goes.
        login_url: the sign-in page (signed-out requests and sign-out go there).
    """

    def __init__(
        self,
        accounts: Accounts,
        *,
        secret: bytes,
        cookie: str,
        limiter: RateLimiter,
        render: PageRender,
        messages: SignInMessages,
        home: str,
        login_url: str = "/login",
    ) -> None:
        self.accounts = accounts
        self.secret = secret
        self.cookie = cookie
        self.limiter = limiter
        self.render = render
        self.messages = messages
        self.home = home
        self.login_url = login_url

    def user(self, request: Request) -> dict[str, Any] | None:
        """The signed-in account, or None (looked up once per request; pages ask again)."""
        token = request.cookies.get(self.cookie)
        if not token:
            return None
        cached = getattr(request.state, "signin", None)
        if cached is None or cached[0] != token:
            cached = (token, self.accounts.session_user(token))
            request.state.signin = cached
        return cached[1]

    def require(self, request: Request) -> dict[str, Any]:
        """The signed-in account; otherwise an HTTP redirect to the sign-in page."""
        user = self.user(request)
        if user is None:
            raise HTTPException(303, headers={"Location": self.login_url})
        return user

    def check_csrf(self, request: Request, fields: dict[str, str]) -> None:
        """Refuse (403, detail ``csrf``) a form whose token is wrong or missing."""
        cookie = request.cookies.get(self.cookie) or request.cookies.get(PRE_COOKIE)
        if not check_csrf(self.secret, cookie, fields.get("csrf")):
            raise HTTPException(403, detail="csrf")

    async def form(self, request: Request) -> dict[str, str]:
        """The posted form after its CSRF check (403 when the token is wrong or missing)."""
        data = await request.form()
        fields = {k: str(v) for k, v in data.items() if isinstance(v, str)}
        self.check_csrf(request, fields)
        return fields

    async def login(self, request: Request) -> Response:
        """GET: the sign-in form; POST: check the password, rate-limited per user and address."""
        if request.method == "GET":
            return self.render(request, "login.html", user=None)
        fields = await self.form(request)
        name = fields.get("user", "").strip()
        host = request.client.host if request.client else "-"
        keys = (f"user:{name}", f"ip:{host}")
        if self.limiter.blocked(*keys):
            minutes = max(1, int(self.limiter.window // 60))
            error = Lazy(self.messages.rate_limited, minutes=minutes)
            return self.render(request, "login.html", 429, user=None, error=error)
        account = self.accounts.authenticate(name, fields.get("password", ""))
        if account is None:
            self.limiter.fail(*keys)
            error = Lazy(self.messages.bad_login)
            return self.render(request, "login.html", 401, user=None, error=error)
        self.limiter.reset(f"user:{name}")
        response = RedirectResponse(self.home, status_code=303)
        response.set_cookie(
            self.cookie,
            self.accounts.create_session(account["name"]),
            httponly=True,
            samesite="strict",
        )
        return response

    async def logout(self, request: Request) -> Response:
        """POST: end the session."""
        await self.form(request)
        token = request.cookies.get(self.cookie)
        if token:
            self.accounts.end_session(token)
        response = RedirectResponse(self.login_url, status_code=303)
        response.delete_cookie(self.cookie)
        return response


def read_password(stdin: bool, prompt: str) -> str:
    """A new account's password: one line of standard input, or asked for without echo."""
    if stdin:
        return sys.stdin.readline().rstrip("\n")
    return getpass.getpass(prompt + ": ")
