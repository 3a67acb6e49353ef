"""The station dashboard: a Starlette app over the `StationStore`.

Views are ``async`` and use the store on the event loop's thread (one connection). Commands
(approve, reject, unlock) go through `station.commands.Commander`, which signs them and waits for
the gateway's reply. The alert feed is a server-sent event stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route

import station.web.i18n  # noqa: F401 - registers the dashboard's messages
from rules.i18n import t
from station.commands import Commander
from station.consumer import StationConsumer
from station.store import StationStore
from station.web.charts import bar_chart
from station.web.store import WebStore
from sync import webui
from sync.errors import LinkError
from sync.webauth import RateLimiter, new_token
from sync.webui import (
    Lazy,
    Renderer,
    SignIn,
    SignInMessages,
    language,
    make_env,
    request_language,
    static_files,
)

HERE = Path(__file__).parent
SESSION_COOKIE = "dg_station"


class Dashboard:
    """The dashboard's state and views.

    Args:
        store: the station store.
        commander: signs and sends commands; None makes the dashboard read-only.
        secret: CSRF key; random per process when None.
        limiter: the sign-in rate limiter.
        poll: seconds between checks for new alerts in the event stream.
    """

    def __init__(
        self,
        store: StationStore,
        *,
        commander: Commander | None = None,
        secret: bytes | None = None,
        limiter: RateLimiter | None = None,
        poll: float = 1.0,
    ) -> None:
        self.store = store
        self.web = WebStore(store)
        self.commander = commander
        self.secret = secret or new_token().encode()
        self.limiter = limiter or RateLimiter(limit=5, window=300.0)
        self.poll = poll
        self.wait = 10.0
        env = make_env(HERE / "templates")
        env.globals["reason"] = reason_text
        self.renderer = Renderer(env, self.secret, SESSION_COOKIE)
        self.signin = SignIn(
            self.web, secret=self.secret, cookie=SESSION_COOKIE, limiter=self.limiter,
            render=self.render, messages=SignInMessages("web.rate_limited", "web.bad_login"),
            home="/",
        )

    def user(self, request: Request) -> dict[str, Any] | None:
        """The signed-in account, or None."""
        return self.signin.user(request)

    def require(self, request: Request, *, admin: bool = False) -> dict[str, Any]:
        """The signed-in account (redirect to sign-in otherwise; 403 when not an admin)."""
        user = self.signin.require(request)
        if admin and user["role"] != "station_admin":
            raise HTTPException(403)
        return user

    async def form(self, request: Request) -> dict[str, str]:
        """The posted form after its CSRF check."""
        return await self.signin.form(request)

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        """Render a page with the common context (the header's count of pending enrolments)."""
        if "user" not in context:
            context["user"] = self.user(request)
        if context["user"] is not None and "pending" not in context:
            context["pending"] = len(self.store.enrolments())
        return self.renderer.render(request, name, context, status)

    def approvals_page(self, request: Request, status: int = 200, **extra: Any) -> Response:
        """The approvals page: the enrolments waiting (read once, also for the header's count)."""
        rows = self.store.enrolments()
        return self.render(request, "approvals.html", status, rows=rows, pending=len(rows), **extra)

    # --- pages ---------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        """Buildings and the live alert feed."""
        self.require(request)
        return self.render(
            request, "index.html", buildings=self.web.buildings(), alerts=self.alerts_view()
        )

    def alerts_view(self) -> list[dict[str, Any]]:
        """Open alerts, newest first (the template translates their kinds)."""
        return self.store.open_alerts()

    async def building(self, request: Request) -> Response:
        """A building's floor plan, charts and recent events."""
        self.require(request)
        site, gateway = request.path_params["site"], request.path_params["gateway"]
        if not self.web.has_building(site, gateway):
            raise HTTPException(404)
        events = self.web.access_events(site, gateway, days=30)  # one read for the whole page
        hours = self.web.entries_per_hour(site, gateway, events)
        days = self.web.occupancy_per_day(site, gateway, events)
        lang = request_language(request)
        with language(lang):
            charts = [
                bar_chart(hours, title=t("web.entries_hour"), label_every=3),
                bar_chart(days, title=t("web.occupancy"), label_every=5),
            ]
        floors = self.web.floors(site, gateway, events)
        return self.render(
            request, "building.html", site=site, gateway=gateway, floors=floors, charts=charts,
            capacity_unknown=any(u["capacity"] is None for _, units in floors for u in units),
            alerts=[a for a in self.alerts_view() if (a["site"], a["gateway"]) == (site, gateway)],
        )

    async def unit(self, request: Request) -> Response:
        """One unit: enrolments, events and alerts with their evidence ids."""
        self.require(request)
        p = request.path_params
        detail = self.web.unit_detail(p["site"], p["gateway"], p["unit"])
        if not any(detail.values()):
            raise HTTPException(404)
        return self.render(
            request, "unit.html", site=p["site"], gateway=p["gateway"], unit=p["unit"], **detail
        )

    async def approvals(self, request: Request) -> Response:
        """The enrolments waiting for a decision."""
        self.require(request)
        return self.approvals_page(request)

    async def decide(self, request: Request) -> Response:
        """POST approve / reject: sign and send the command, wait for the gateway's reply."""
        user = self.require(request)
        fields = await self.form(request)
        p = request.path_params
        site, gateway, occupant, verb = p["site"], p["gateway"], p["occupant"], p["verb"]
        if self.commander is None:
            return self.approvals_page(request, 503, error=Lazy("web.no_commander"))
        if verb not in {"approve", "reject"}:
            raise HTTPException(404)
        reason = fields.get("reason", "").strip()
        if verb == "reject" and not reason:
            raise HTTPException(400)
        try:
            if verb == "approve":
                reply = await self.commander.approve(
                    site, gateway, occupant, by=user["name"], wait=self.wait
                )
            else:
                reply = await self.commander.reject(
                    site, gateway, occupant, by=user["name"], reason=reason, wait=self.wait
                )
        except LinkError as err:
            return self.approvals_page(request, 502, error=str(err))
        target = f"{site}/{gateway}/{occupant}"
        code = reply["code"] if reply else "no_reply"
        self.web.audit(user["name"], verb, target, f"{code} {reason}".strip())
        ok: Lazy | None = None
        error: Lazy | str | None = None
        if reply is None:
            error = Lazy("web.no_reply")
        elif not reply.get("ok"):
            error = f"{code} {reply.get('message', '')}"
        else:
            key = "web.approved" if verb == "approve" else "web.rejected"
            ok = Lazy(key, occupant=occupant, code=code)
        return self.approvals_page(request, ok=ok, error=error)

    async def ack(self, request: Request) -> Response:
        """POST: acknowledge an alert."""
        user = self.require(request)
        await self.form(request)
        alert_id = request.path_params["alert_id"]
        if not self.store.ack_alert(alert_id, user["name"]):
            raise HTTPException(404)
        self.web.audit(user["name"], "ack", alert_id)
        back = request.headers.get("referer") or "/"
        return RedirectResponse(back if back.startswith(str(request.base_url)) else "/", 303)

    async def unlock(self, request: Request) -> Response:
        """POST: remote unlock of a door (station admins only), audited."""
        user = self.require(request, admin=True)
        fields = await self.form(request)
        site, gateway = request.path_params["site"], request.path_params["gateway"]
        door = fields.get("door", "main") or "main"
        if self.commander is None:
            raise HTTPException(503)
        try:
            _, reply = await self.commander.send(
                site, gateway, "unlock", {"door": door, "reason": f"dashboard:{user['name']}"},
                wait=self.wait,
            )
        except LinkError as err:
            raise HTTPException(502, detail=str(err)) from err
        code = reply["code"] if reply else "no_reply"
        self.web.audit(user["name"], "unlock", f"{site}/{gateway}/{door}", code)
        return self.render(
            request, "index.html", buildings=self.web.buildings(), alerts=self.alerts_view(),
            ok=Lazy("web.unlocked", code=code),
        )

    async def search(self, request: Request) -> Response:
        """Search enrolments by unit, masked ID number or masked name."""
        self.require(request)
        query = request.query_params.get("q", "")
        return self.render(request, "search.html", q=query, rows=self.web.search(query))

    async def audit(self, request: Request) -> Response:
        """The dashboard's audit log."""
        self.require(request)
        return self.render(request, "audit.html", audit=self.web.audit_rows())

    async def stream(self, request: Request) -> Response:
        """Server-sent events: every open alert, then each new one as it arrives.

        ``?once=1`` ends the stream after the alerts already open (for scripts and tests).
        """
        self.require(request)
        lang = request_language(request)
        once = request.query_params.get("once") == "1"

        async def events() -> AsyncIterator[str]:
            seen: set[str] = set()
            while True:
                fresh = [a for a in reversed(self.store.open_alerts()) if a["id"] not in seen]
                for alert in fresh:
                    seen.add(alert["id"])
                    with language(lang):
                        data = {**alert, "label": t("alert." + alert["kind"])}
                    text = json.dumps(data, ensure_ascii=False)
                    yield f"event: alert\nid: {alert['id']}\ndata: {text}\n\n"
                if once:
                    return
                yield ": keep-alive\n\n"
                await asyncio.sleep(self.poll)
                if await request.is_disconnected():
                    return

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


def reason_text(code: str) -> str:
    """A floor-plan reason code (``pending:2``, ``alert:door_forced``) in the user's language."""
    kind, _, value = code.partition(":")
    if kind == "alert":
        return t("reason.alert", n=t("alert." + value))
    return webui.reason_text(code)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 303 and exc.headers:
        return RedirectResponse(exc.headers["Location"], status_code=303)
    dashboard: Dashboard = request.app.state.dashboard
    key = {403: "web.forbidden", 404: "web.not_found"}.get(exc.status_code, "")
    if exc.detail == "csrf":
        key = "web.csrf"
    message = Lazy(key) if key else Lazy("web.error", message=exc.detail)
    return dashboard.render(request, "error.html", exc.status_code, message=message)


def create_app(
    store: StationStore,
    *,
    commander: Commander | None = None,
    consumer: StationConsumer | None = None,
    secret: bytes | None = None,
    limiter: RateLimiter | None = None,
    poll: float = 1.0,
) -> Starlette:
    """The dashboard as an ASGI app (``app.state.dashboard`` holds the `Dashboard`).

    Args:
        store: the station store.
        commander: sends signed commands (approve, reject, unlock); None: read-only.
        consumer: when given, runs beside the app (receives from the gateways).
        secret: CSRF key; random per process when None.
        limiter: sign-in rate limiter.
        poll: seconds between alert checks of the event stream.
    """
    dashboard = Dashboard(store, commander=commander, secret=secret, limiter=limiter, poll=poll)
    d = dashboard
    building = "/b/{site}/{gateway}"

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(consumer.run()) if consumer is not None else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    routes = [
        Route("/", d.index),
        Route("/login", d.signin.login, methods=["GET", "POST"]),
        Route("/logout", d.signin.logout, methods=["POST"]),
        Route(building, d.building),
        Route(building + "/u/{unit}", d.unit),
        Route(building + "/unlock", d.unlock, methods=["POST"]),
        Route("/approvals", d.approvals),
        Route(
            "/approvals/{site}/{gateway}/{occupant}/{verb:str}", d.decide, methods=["POST"]
        ),
        Route("/alerts/stream", d.stream),
        Route("/alerts/{alert_id}/ack", d.ack, methods=["POST"]),
        Route("/search", d.search),
        Route("/audit", d.audit),
        Mount("/static", static_files(HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes, exception_handlers={HTTPException: _http_error}, lifespan=lifespan
    )
    app.state.dashboard = dashboard
    return app
