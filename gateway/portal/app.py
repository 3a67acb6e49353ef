"""The landlord's portal: a Starlette app over the gateway's store.

Every view is ``async`` and touches SQLite only briefly, on the event loop's thread, so one
connection serves all requests. Build it with `create_app(config, store, secret=…)` and serve it
with uvicorn (``doorgate portal serve``).
"""

from __future__ import annotations

import hmac
import json
from datetime import date
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import gateway.portal.i18n  # noqa: F401 - registers the portal's messages
from gateway.config import GatewayConfig
from gateway.portal.taps import TapHub
from rules.model import CredentialKind
from sync.errors import NotFound, StoreError
from sync.portal_store import PortalStore
from sync.store import Store
from sync.webauth import RateLimiter, check_csrf, csrf_token, derive_secret, new_token
from sync.webui import PRE_COOKIE, Lazy, Renderer, make_env

HERE = Path(__file__).parent
SESSION_COOKIE = "dg_session"
WRITERS = {"landlord", "station_admin"}


class Portal:
    """The portal's state and views.

    Args:
        config: the gateway configuration (readers, approval policy).
        store: the gateway store (its own connection; the daemon may hold another).
        secret: key for CSRF tokens and QR links; random per process when None.
        taps: where the daemon hands card reads to a waiting "tap the card now".
        tap_timeout: seconds to wait for that card.
        limiter: the sign-in rate limiter.
    """

    def __init__(
        self,
        config: GatewayConfig,
        store: Store,
        *,
        secret: bytes | None = None,
        taps: TapHub | None = None,
        tap_timeout: float = 20.0,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.portal = PortalStore(store.db)
        self.secret = secret or new_token().encode()
        self.taps = taps or TapHub()
        self.tap_timeout = tap_timeout
        self.limiter = limiter or RateLimiter(limit=5, window=300.0)
        self.renderer = Renderer(make_env(HERE / "templates"), self.secret, SESSION_COOKIE)

    # --- plumbing ------------------------------------------------------------------------

    def user(self, request: Request) -> dict[str, Any] | None:
        """The signed-in account, or None."""
        token = request.cookies.get(SESSION_COOKIE)
        return self.portal.session_user(token) if token else None

    def require(self, request: Request) -> dict[str, Any]:
        """The signed-in account; otherwise an HTTP redirect to the sign-in page."""
        user = self.user(request)
        if user is None:
            raise HTTPException(303, headers={"Location": "/login"})
        return user

    async def form(self, request: Request) -> dict[str, str]:
        """The posted form after its CSRF check (403 when the token is wrong or missing)."""
        data = await request.form()
        fields = {k: str(v) for k, v in data.items() if isinstance(v, str)}
        cookie = request.cookies.get(SESSION_COOKIE) or request.cookies.get(PRE_COOKIE)
        if not check_csrf(self.secret, cookie, fields.get("csrf")):
            raise HTTPException(403, detail="csrf")
        return fields

    def writable_unit(self, user: dict[str, Any], unit_id: str) -> None:
        """Refuse (404 / 403) unless `user` may change `unit_id`."""
        if not self.portal.may_see(user, unit_id):
            raise HTTPException(404)
        if user["role"] not in WRITERS:
            raise HTTPException(403)

    def occupant_unit(self, user: dict[str, Any], occupant_id: str) -> str:
        """The unit of an occupant `user` may change (404 for someone else's tenant)."""
        try:
            unit_id = self.store.get_occupant(occupant_id).unit_id
        except NotFound as err:
            raise HTTPException(404) from err
        self.writable_unit(user, unit_id)
        return unit_id

    def render(
        self, request: Request, name: str, status: int = 200, **context: Any
    ) -> Response:
        """Render a page with the common context."""
        context.setdefault("user", self.user(request))
        return self.renderer.render(request, name, context, status)

    def declare_key(self, unit_id: str) -> str:
        """The token printed in a unit's self-declaration QR link."""
        return csrf_token(self.secret, "declare:" + unit_id)[:20]

    # --- sign-in -------------------------------------------------------------------------

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
            error = Lazy("portal.rate_limited", minutes=minutes)
            return self.render(request, "login.html", 429, user=None, error=error)
        account = self.portal.authenticate(name, fields.get("password", ""))
        if account is None:
            self.limiter.fail(*keys)
            return self.render(
                request, "login.html", 401, user=None, error=Lazy("portal.bad_login")
            )
        self.limiter.reset(f"user:{name}")
        response = RedirectResponse("/units", status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            self.portal.create_session(account["name"]),
            httponly=True,
            samesite="strict",
        )
        return response

    async def logout(self, request: Request) -> Response:
        """End the session."""
        await self.form(request)
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            self.portal.end_session(token)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    # --- pages ---------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        """Redirect to the units or the sign-in page."""
        return RedirectResponse("/units" if self.user(request) else "/login", status_code=303)

    async def units(self, request: Request) -> Response:
        """Every unit the user may see, coloured by status."""
        user = self.require(request)
        rows = [{**u, "colour": unit_colour(u)} for u in self.portal.units_for(user)]
        return self.render(request, "units.html", units=rows)

    def unit_page(
        self, request: Request, unit_id: str, *, status: int = 200, **extra: Any
    ) -> Response:
        """The unit's tenants, cards, entries and audit rows, with its forms."""
        user = self.require(request)
        if not self.portal.may_see(user, unit_id):
            raise HTTPException(404)
        unit = self.store.get_unit(unit_id)
        tenants = []
        for occupant in self.store.list_occupants(unit_id):
            cards = self.store.list_cards(occupant.id)
            tenants.append({"o": occupant, "cards": cards})
        entries = [
            {**e, "reasons": json.loads(e["reasons"])} for e in self.portal.entries(unit_id)
        ]
        return self.render(
            request,
            "unit.html",
            status,
            unit=unit,
            tenants=tenants,
            entries=entries,
            audit=self.portal.audit_rows([unit_id], limit=20),
            readers=[r.name for r in self.config.readers],
            can_write=user["role"] in WRITERS,
            can_approve=self.can_approve(user),
            tap_timeout=int(self.tap_timeout),
            today=date.today().isoformat(),
            **extra,
        )

    def can_approve(self, user: dict[str, Any]) -> bool:
        """Local approval: a station admin always, a landlord when the building has no station."""
        if user["role"] == "station_admin":
            return True
        return user["role"] == "landlord" and self.config.station.approval == "local"

    async def unit(self, request: Request) -> Response:
        """GET the unit page."""
        return self.unit_page(request, request.path_params["unit_id"])

    async def enrol(self, request: Request) -> Response:
        """POST: enrol a tenant as pending (the enrolment request goes to the station)."""
        user = self.require(request)
        unit_id = request.path_params["unit_id"]
        self.writable_unit(user, unit_id)
        fields = await self.form(request)
        try:
            valid_from = date.fromisoformat(fields.get("valid_from", ""))
            valid_to = (
                date.fromisoformat(fields["valid_to"]) if fields.get("valid_to") else None
            )
            occupant = self.store.add_occupant(
                unit_id, fields.get("name", ""), fields.get("id_number", ""), valid_from, valid_to
            )
        except (ValueError, StoreError) as err:
            return self.unit_page(request, unit_id, status=400, error=_message(err))
        self.portal.audit(
            user["name"], "enrol", unit_id=unit_id, occupant_id=occupant.id,
            detail=occupant.id_masked,
        )
        return self.unit_page(request, unit_id, ok=Lazy("portal.enrolled", name=occupant.name))

    async def tap(self, request: Request) -> Response:
        """POST: wait for the next card at the chosen reader and bind it to the tenant."""
        user = self.require(request)
        occupant_id = request.path_params["occupant_id"]
        unit_id = self.occupant_unit(user, occupant_id)
        fields = await self.form(request)
        reader = fields.get("reader", "")
        if reader not in {r.name for r in self.config.readers}:
            raise HTTPException(400)
        card = await self.taps.wait(reader, self.tap_timeout)
        if card is None:
            error = Lazy("portal.no_card", timeout=int(self.tap_timeout))
            return self.unit_page(request, unit_id, status=408, error=error)
        kind = card.kind if card.kind is not CredentialKind.FACE else CredentialKind.IC
        try:
            credential = self.store.add_card(occupant_id, kind, card.uid_hex)
        except StoreError as err:
            return self.unit_page(request, unit_id, status=400, error=_message(err))
        masked = next(
            c["masked"] for c in self.store.list_cards(occupant_id) if c["id"] == credential.id
        )
        self.portal.audit(
            user["name"], "card", unit_id=unit_id, occupant_id=occupant_id,
            detail=f"{reader} {masked}",
        )
        return self.unit_page(request, unit_id, ok=Lazy("portal.card_bound", masked=masked))

    async def move_out(self, request: Request) -> Response:
        """POST: move a tenant out (cards revoked, face templates deleted)."""
        user = self.require(request)
        occupant_id = request.path_params["occupant_id"]
        unit_id = self.occupant_unit(user, occupant_id)
        await self.form(request)
        try:
            occupant = self.store.move_out(occupant_id)
        except StoreError as err:
            return self.unit_page(request, unit_id, status=400, error=_message(err))
        self.portal.audit(user["name"], "move_out", unit_id=unit_id, occupant_id=occupant_id)
        return self.unit_page(request, unit_id, ok=Lazy("portal.moved_out", name=occupant.name))

    async def renew(self, request: Request) -> Response:
        """POST: set a new tenancy end."""
        user = self.require(request)
        occupant_id = request.path_params["occupant_id"]
        unit_id = self.occupant_unit(user, occupant_id)
        fields = await self.form(request)
        try:
            valid_to = date.fromisoformat(fields.get("valid_to", ""))
            self.portal.renew(occupant_id, valid_to)
        except (ValueError, StoreError) as err:
            return self.unit_page(request, unit_id, status=400, error=_message(err))
        name = self.store.get_occupant(occupant_id).name
        self.portal.audit(
            user["name"], "renew", unit_id=unit_id, occupant_id=occupant_id,
            detail=valid_to.isoformat(),
        )
        return self.unit_page(request, unit_id, ok=Lazy("portal.renewed", name=name, to=valid_to))

    async def approve(self, request: Request) -> Response:
        """POST: approve locally (buildings without a station, or a station admin on site)."""
        user = self.require(request)
        occupant_id = request.path_params["occupant_id"]
        unit_id = self.occupant_unit(user, occupant_id)
        await self.form(request)
        if not self.can_approve(user):
            raise HTTPException(403)
        try:
            occupant = self.store.approve(
                occupant_id, by=user["name"], capacity_policy=self.config.station.capacity_policy
            )
        except StoreError as err:
            return self.unit_page(request, unit_id, status=400, error=_message(err))
        self.portal.audit(user["name"], "approve", unit_id=unit_id, occupant_id=occupant_id)
        ok = Lazy("ok.approved", name=occupant.name, id=occupant.id)
        return self.unit_page(request, unit_id, ok=ok)

    async def audit(self, request: Request) -> Response:
        """The audit log: a landlord's own units, or everything for station roles."""
        user = self.require(request)
        units = None
        if user["role"] == "landlord":
            units = [u["id"] for u in self.portal.units_for(user)]
        return self.render(request, "audit.html", audit=self.portal.audit_rows(units))

    async def qr(self, request: Request) -> Response:
        """A printable page for the unit's door with its self-declaration link."""
        user = self.require(request)
        unit_id = request.path_params["unit_id"]
        if not self.portal.may_see(user, unit_id):
            raise HTTPException(404)
        url = str(request.url_for("declare", unit_id=unit_id))
        link = f"{url}?k={self.declare_key(unit_id)}"
        return self.render(request, "qr.html", unit_id=unit_id, link=link)

    async def declare(self, request: Request) -> Response:
        """Public: a tenant declares themselves for a unit; it waits as a pending enrolment."""
        unit_id = request.path_params["unit_id"]
        key = request.query_params.get("k", "")
        if not hmac.compare_digest(key, self.declare_key(unit_id)):
            raise HTTPException(404)
        try:
            self.store.get_unit(unit_id)
        except NotFound as err:
            raise HTTPException(404) from err
        if request.method == "GET":
            return self.render(request, "declare.html", unit_id=unit_id, key=key, user=None)
        fields = await self.form(request)
        host = request.client.host if request.client else "-"
        if self.limiter.blocked(f"declare:{host}"):
            raise HTTPException(429)
        try:
            valid_from = date.fromisoformat(fields.get("valid_from", ""))
            valid_to = date.fromisoformat(fields["valid_to"]) if fields.get("valid_to") else None
            occupant = self.store.add_occupant(
                unit_id, fields.get("name", ""), fields.get("id_number", ""), valid_from, valid_to
            )
        except (ValueError, StoreError) as err:
            self.limiter.fail(f"declare:{host}")
            return self.render(
                request, "declare.html", 400, unit_id=unit_id, key=key, user=None,
                error=_message(err),
            )
        self.portal.audit(
            "tenant@" + host, "declare", unit_id=unit_id, occupant_id=occupant.id,
            detail=occupant.id_masked,
        )
        return self.render(
            request, "declare.html", unit_id=unit_id, key=key, user=None, done=True
        )


def unit_colour(unit: dict[str, Any]) -> str:
    """``red`` over capacity, ``yellow`` something pending, ``green`` occupied, ``grey`` empty."""
    if unit["approved"] > unit["capacity"]:
        return "red"
    if unit["pending"]:
        return "yellow"
    return "green" if unit["approved"] else "grey"


def _message(err: Exception) -> Lazy:
    return Lazy("portal.error", message=str(err))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in {301, 302, 303} and exc.headers:
        return RedirectResponse(exc.headers["Location"], status_code=exc.status_code)
    portal: Portal = request.app.state.portal
    key = {403: "portal.forbidden", 404: "portal.not_found"}.get(exc.status_code, "")
    if exc.detail == "csrf":
        key = "portal.csrf"
    message = Lazy(key) if key else Lazy("portal.error", message=exc.detail)
    return portal.render(request, "error.html", exc.status_code, message=message)


def create_app(
    config: GatewayConfig,
    store: Store,
    *,
    secret: bytes | None = None,
    taps: TapHub | None = None,
    tap_timeout: float = 20.0,
    limiter: RateLimiter | None = None,
) -> Starlette:
    """The portal as an ASGI app (``app.state.portal`` holds the `Portal`).

    Args:
        config: the gateway configuration.
        store: an open gateway store.
        secret: the portal's key (derive it with `portal_secret`); random when None.
        taps: the daemon's `TapHub`, when the portal runs inside the daemon.
        tap_timeout: seconds "tap the card now" waits.
        limiter: sign-in rate limiter (tests pass a small one).
    """
    portal = Portal(
        config, store, secret=secret, taps=taps, tap_timeout=tap_timeout, limiter=limiter
    )
    p = portal
    routes = [
        Route("/", p.home),
        Route("/login", p.login, methods=["GET", "POST"]),
        Route("/logout", p.logout, methods=["POST"]),
        Route("/units", p.units),
        Route("/units/{unit_id}", p.unit),
        Route("/units/{unit_id}/enrol", p.enrol, methods=["POST"]),
        Route("/units/{unit_id}/qr", p.qr),
        Route("/declare/{unit_id}", p.declare, methods=["GET", "POST"], name="declare"),
        Route("/occupants/{occupant_id}/card", p.tap, methods=["POST"]),
        Route("/occupants/{occupant_id}/move-out", p.move_out, methods=["POST"]),
        Route("/occupants/{occupant_id}/renew", p.renew, methods=["POST"]),
        Route("/occupants/{occupant_id}/approve", p.approve, methods=["POST"]),
        Route("/audit", p.audit),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
    app.state.portal = portal
    return app


def portal_secret(hash_key: bytes) -> bytes:
    """The portal's key, derived from the gateway's hash key (stable across restarts)."""
    return derive_secret(hash_key, "doorgate-portal/1")

