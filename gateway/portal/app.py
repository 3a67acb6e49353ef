"""The landlord's portal: a Starlette app over the gateway's store.

Every view is ``async`` and touches SQLite only briefly, on the event loop's thread, so one
connection serves all requests. Build it with `create_app(config, store, secret=…)` and serve it
with uvicorn (``doorgate portal serve``).
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import segno
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route

import gateway.portal.i18n  # noqa: F401 - registers the portal's messages
from drivers.face.analysis import PhotoFace
from drivers.face.errors import FaceError, PhotoRejected
from drivers.face.service import analyse_photo_bytes
from drivers.face.types import FaceCapture
from gateway.config import GatewayConfig
from gateway.portal.taps import Tap, TapHub
from gateway.rules_runtime import STATE_KEY
from rules.colour import Colour, UnitStatus, site_status
from rules.engine import RulesState
from rules.identity import InvalidIdNumber, mask_id_number, normalise_id_number
from rules.model import CredentialKind, Occupant
from sync import faces as face_db
from sync.errors import NotFound, SyncError, ValidationError
from sync.portal_store import PortalStore
from sync.store import Store
from sync.webauth import RateLimiter, csrf_token, derive_secret, new_token
from sync.webui import (
    Lazy,
    Renderer,
    SignIn,
    SignInMessages,
    make_env,
    reason_text,
    static_files,
)

logger = logging.getLogger(__name__)
HERE = Path(__file__).parent
SESSION_COOKIE = "dg_session"
WRITERS = {"landlord", "station_admin"}
CAPTURE_TTL_S = 300.0  # a camera capture waits this long for "use this face", in memory only
MAX_PHOTO_BYTES = 8 * 1024 * 1024
MAX_PENDING_CAPTURES = 64

CaptureFn = Callable[[], Awaitable[FaceCapture]]
PhotoAnalyser = Callable[[bytes], Awaitable[PhotoFace]]
OnChange = Callable[[], Awaitable[None]]
UnitStatuses = Callable[[], Mapping[str, UnitStatus]]


class FormError(Exception):
    """A form value the portal itself refuses, with a message translated at render time."""

    def __init__(self, message: Lazy) -> None:
        super().__init__(message.key)
        self.message = message


@dataclass(frozen=True, slots=True)
class PendingCapture:
    """A usable face shown to the landlord, kept in memory until "use this face" or expiry."""

    occupant_id: str
    user: str
    camera: str
    encoding: npt.NDArray[np.float32]
    quality: float
    expires: float  # time.monotonic()


class Portal:
    """The portal's state and views.

    Args:
        config: the gateway configuration (readers, approval policy).
        store: the gateway store (its own connection; the daemon may hold another).
        secret: key for CSRF tokens and QR links; random per process when None.
        taps: where the daemon hands card reads to a waiting "tap the card now".
        tap_timeout: seconds to wait for that card.
        limiter: the sign-in rate limiter.
        cameras: "look at the camera": a capture function per camera name.
        photo_analyser: judges an uploaded photo (default: a short-lived child process).
        on_change: awaited after anything the rules or the face engine must reload (a visitor
            pass, a face template, an enrolment, an approval, a move-out), so the daemon can
            reload at once.
        unit_statuses: the daemon's live unit colours (`rules.colour`), by unit id; without it
            the colours are computed from the store and the rules state the daemon last saved.
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
        cameras: Mapping[str, CaptureFn] | None = None,
        photo_analyser: PhotoAnalyser | None = None,
        on_change: OnChange | None = None,
        unit_statuses: UnitStatuses | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.portal = PortalStore(store.db)
        self.secret = secret or new_token().encode()
        self.taps = taps or TapHub()
        self.tap_timeout = tap_timeout
        self.limiter = limiter or RateLimiter(limit=5, window=300.0)
        env = make_env(HERE / "templates")
        env.globals["reason"] = reason_text
        self.renderer = Renderer(env, self.secret, SESSION_COOKIE)
        self.signin = SignIn(
            self.portal, secret=self.secret, cookie=SESSION_COOKIE, limiter=self.limiter,
            render=self.render, messages=SignInMessages("portal.rate_limited", "portal.bad_login"),
            home="/units",
        )
        self.cameras: dict[str, CaptureFn] = dict(cameras or {})
        self.photo_analyser: PhotoAnalyser = photo_analyser or analyse_photo_bytes
        self.on_change = on_change
        self.unit_statuses = unit_statuses
        self.captures: dict[str, PendingCapture] = {}
        self.tz = ZoneInfo(config.site.timezone)

    # --- plumbing ------------------------------------------------------------------------

    def user(self, request: Request) -> dict[str, Any] | None:
        """The signed-in account, or None."""
        return self.signin.user(request)

    def require(self, request: Request) -> dict[str, Any]:
        """The signed-in account; otherwise an HTTP redirect to the sign-in page."""
        return self.signin.require(request)

    async def form(self, request: Request) -> dict[str, str]:
        """The posted form after its CSRF check (403 when the token is wrong or missing)."""
        return await self.signin.form(request)

    def writable_unit(self, user: dict[str, Any], unit_id: str) -> None:
        """Refuse (404 / 403) unless `user` may change `unit_id`."""
        if not self.portal.may_see(user, unit_id):
            raise HTTPException(404)
        if user["role"] not in WRITERS:
            raise HTTPException(403)

    def writable_occupant(self, request: Request, user: dict[str, Any]) -> Occupant:
        """The occupant in the path, when `user` may change them (404 for someone else's tenant)."""
        try:
            occupant = self.store.get_occupant(request.path_params["occupant_id"])
        except NotFound as err:
            raise HTTPException(404) from err
        self.writable_unit(user, occupant.unit_id)
        return occupant

    async def wait_card(self, fields: dict[str, str]) -> Tap | None:
        """The next card at the form's reader (400 for a reader not configured); None: timeout."""
        reader = fields.get("reader", "")
        if reader not in {r.name for r in self.config.readers}:
            raise HTTPException(400)
        return await self.taps.wait(reader, self.tap_timeout)

    def add_occupant(self, unit_id: str, fields: dict[str, str]) -> Occupant:
        """Enrol the person of an enrol or declare form as pending (ValueError: a bad date)."""
        valid_from = date.fromisoformat(fields.get("valid_from", ""))
        valid_to = date.fromisoformat(fields["valid_to"]) if fields.get("valid_to") else None
        return self.store.add_occupant(
            unit_id, fields.get("name", ""), fields.get("id_number", ""), valid_from, valid_to
        )

    def render(
        self, request: Request, name: str, status: int = 200, **context: Any
    ) -> Response:
        """Render a page with the common context."""
        context.setdefault("user", self.user(request))
        response = self.renderer.render(request, name, context, status)
        # Personal data (names, masked IDs, a face crop, an ID number read from a card): never
        # kept by the browser or a proxy.
        response.headers["Cache-Control"] = "no-store"
        return response

    async def changed(self) -> None:
        """Tell the daemon that rules data or templates changed (when it asked to be told)."""
        if self.on_change is not None:
            await self.on_change()

    async def multipart(self, request: Request) -> tuple[dict[str, str], dict[str, bytes]]:
        """A posted multipart form, parsed in memory (an upload never touches the disk).

        The CSRF token is checked as for `form`. Refuses (413) bodies over `MAX_PHOTO_BYTES`.
        """
        if int(request.headers.get("content-length") or 0) > MAX_PHOTO_BYTES + 65536:
            raise HTTPException(413)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_PHOTO_BYTES + 65536:
                raise HTTPException(413)
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            raise HTTPException(400)
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
        message = BytesParser(policy=policy.HTTP).parsebytes(head + bytes(body))
        fields: dict[str, str] = {}
        files: dict[str, bytes] = {}
        if message.is_multipart():
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if not isinstance(name, str):
                    continue
                raw = part.get_payload(decode=True)
                data = raw if isinstance(raw, bytes) else b""
                if part.get_filename() is not None:
                    files[name] = data
                else:
                    fields[name] = data.decode("utf-8", "replace")
        self.signin.check_csrf(request, fields)
        return fields, files

    def statuses(self, unit_ids: Iterable[str]) -> dict[str, UnitStatus]:
        """The colour and reasons of each of `unit_ids` (`rules.colour`), by unit id.

        Inside the daemon they come from its live rules state; standalone from the store's
        units and occupants and the rules state the daemon last saved (none: an empty state).
        A unit the daemon has not loaded yet is left out.
        """
        wanted = list(dict.fromkeys(unit_ids))
        if self.unit_statuses is not None:
            live = self.unit_statuses()
            return {u: live[u] for u in wanted if u in live}
        if not wanted:
            return {}
        units = {u: self.store.get_unit(u) for u in wanted}
        if len(wanted) <= 50:
            occupants = [o for u in wanted for o in self.store.list_occupants(u)]
        else:
            occupants = [o for o in self.store.list_occupants() if o.unit_id in units]
        state = self.saved_rules_state()
        found = site_status(
            units, occupants, state.occupancy, state.episodes, datetime.now(self.tz),
            doors=[d.name for d in self.config.doors],
        )
        return {s.unit: s for s in found}

    def saved_rules_state(self) -> RulesState:
        """The rules state the daemon last saved in the store, or an empty one."""
        raw = self.store.get_state(STATE_KEY)
        if not raw:
            return RulesState()
        try:
            return RulesState.from_dict(json.loads(raw))
        except ValueError as err:
            logger.warning("saved rules state unreadable (%s); colours without it", err)
            return RulesState()

    def declare_key(self, unit_id: str) -> str:
        """The token printed in a unit's self-declaration QR link."""
        return csrf_token(self.secret, "declare:" + unit_id)[:20]

    # --- pages ---------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        """Redirect to the units or the sign-in page."""
        return RedirectResponse("/units" if self.user(request) else "/login", status_code=303)

    async def units(self, request: Request) -> Response:
        """Every unit the user may see, coloured by status."""
        user = self.require(request)
        units = self.portal.units_for(user)
        statuses = self.statuses(u["id"] for u in units)
        rows = [{**u, **_status_view(statuses.get(u["id"]))} for u in units]
        return self.render(request, "units.html", units=rows)

    def unit_page(
        self, request: Request, unit_id: str, *, status: int = 200, **extra: Any
    ) -> Response:
        """The unit's tenants, cards, entries and audit rows, with its forms."""
        user = self.require(request)
        if not self.portal.may_see(user, unit_id):
            raise HTTPException(404)
        unit = self.store.get_unit(unit_id)
        colour = _status_view(self.statuses([unit_id]).get(unit_id))
        occupants = self.store.list_occupants(unit_id)
        declared = self.portal.occupant_declared([o.id for o in occupants])
        tenants = [
            {
                "o": occupant,
                "cards": self.store.list_cards(occupant.id),
                "faces": face_db.template_count(self.store.db, occupant.id),
                "declared": declared.get(occupant.id),
            }
            for occupant in occupants
        ]
        entries = [
            {**e, "reasons": json.loads(e["reasons"])} for e in self.portal.entries(unit_id)
        ]
        now = datetime.now(self.tz)
        passes = [{**p, "state": pass_state(p, now)} for p in self.portal.passes(unit_id)]
        start = now.replace(second=0, microsecond=0)
        return self.render(
            request,
            "unit.html",
            status,
            unit=unit,
            unit_status=colour,
            tenants=tenants,
            entries=entries,
            alerts=self.portal.alerts(unit_id),
            passes=passes,
            audit=self.portal.audit_rows([unit_id], limit=20),
            readers=[r.name for r in self.config.readers],
            cameras=sorted(self.cameras),
            can_write=user["role"] in WRITERS,
            can_approve=self.can_approve(user),
            tap_timeout=int(self.tap_timeout),
            today=date.today().isoformat(),
            pass_from=start.strftime("%Y-%m-%dT%H:%M"),
            pass_to=(start + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
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
            occupant = self.add_occupant(unit_id, fields)
        except (ValueError, SyncError) as err:
            return self.unit_page(request, unit_id, status=400, error=_message(err))
        self.portal.audit(
            user["name"], "enrol", unit_id=unit_id, occupant_id=occupant.id,
            detail=occupant.id_masked,
        )
        await self.changed()
        return self.unit_page(request, unit_id, ok=Lazy("portal.enrolled", name=occupant.name))

    async def tap(self, request: Request) -> Response:
        """POST: wait for the next card at the chosen reader and bind it to the tenant."""
        user = self.require(request)
        occupant = self.writable_occupant(request, user)
        occupant_id, unit_id = occupant.id, occupant.unit_id
        card = await self.wait_card(await self.form(request))
        if card is None:
            error = Lazy("portal.no_card", timeout=int(self.tap_timeout))
            return self.unit_page(request, unit_id, status=408, error=error)
        if card.kind is CredentialKind.IDCARD:
            return self.bind_idcard(request, user, unit_id, occupant_id, card)
        kind = card.kind if card.kind is not CredentialKind.FACE else CredentialKind.IC
        try:
            credential = self.store.add_card(occupant_id, kind, card.uid_hex)
        except SyncError as err:
            return self.unit_page(request, unit_id, status=400, error=_message(err))
        masked = next(
            c["masked"] for c in self.store.list_cards(occupant_id) if c["id"] == credential.id
        )
        self.portal.audit(
            user["name"], "card", unit_id=unit_id, occupant_id=occupant_id,
            detail=f"{card.reader} {masked}",
        )
        return self.unit_page(request, unit_id, ok=Lazy("portal.card_bound", masked=masked))

    async def move_out(self, request: Request) -> Response:
        """POST: move a tenant out (cards revoked, face templates deleted)."""
        user = self.require(request)
        occupant = self.writable_occupant(request, user)
        occupant_id, unit_id = occupant.id, occupant.unit_id
        await self.form(request)
        try:
            occupant = self.store.move_out(occupant_id)
        except SyncError as err:
            return self.unit_page(request, unit_id, status=400, error=_message(err))
        self.portal.audit(user["name"], "move_out", unit_id=unit_id, occupant_id=occupant_id)
        await self.changed()
        return self.unit_page(request, unit_id, ok=Lazy("portal.moved_out", name=occupant.name))

    async def renew(self, request: Request) -> Response:
        """POST: set a new tenancy end."""
        user = self.require(request)
        occupant = self.writable_occupant(request, user)
        occupant_id, unit_id = occupant.id, occupant.unit_id
        fields = await self.form(request)
        try:
            valid_to = date.fromisoformat(fields.get("valid_to", ""))
            self.portal.renew(occupant_id, valid_to)
        except (ValueError, SyncError) as err:
            return self.unit_page(request, unit_id, status=400, error=_message(err))
        self.portal.audit(
            user["name"], "renew", unit_id=unit_id, occupant_id=occupant_id,
            detail=valid_to.isoformat(),
        )
        await self.changed()
        ok = Lazy("portal.renewed", name=occupant.name, to=valid_to)
        return self.unit_page(request, unit_id, ok=ok)

    def bind_idcard(
        self, request: Request, user: dict[str, Any], unit_id: str, occupant_id: str, card: Tap
    ) -> Response:
        """A resident ID card tapped for a tenant: it is their credential if it is their card.

        The ID card opens the door through the occupant's keyed ID hash (以证管人); the
        ``idcard`` credential row records that the card itself was presented and checked.
        """
        try:
            number = normalise_id_number(card.value)
        except InvalidIdNumber as err:
            return self.unit_page(request, unit_id, status=400, error=_message(err))
        masked = mask_id_number(number)
        try:
            self.portal.bind_idcard(occupant_id, self.store.hash_id_number(number), masked)
        except ValidationError:
            error = Lazy("portal.idcard_other", masked=masked)
            return self.unit_page(request, unit_id, status=400, error=error)
        except SyncError as err:
            return self.unit_page(request, unit_id, status=400, error=_message(err))
        self.portal.audit(
            user["name"], "idcard", unit_id=unit_id, occupant_id=occupant_id,
            detail=f"{card.reader} {masked}",
        )
        return self.unit_page(request, unit_id, ok=Lazy("portal.idcard_bound", masked=masked))

    async def read_idcard(self, request: Request) -> Response:
        """POST: wait for a resident ID card at a reader and pre-fill the enrol form with it.

        The ID number appears only in this response's form field (sent ``no-store``); nothing
        is stored before the landlord submits the form.
        """
        user = self.require(request)
        unit_id = request.path_params["unit_id"]
        self.writable_unit(user, unit_id)
        fields = await self.form(request)
        card = await self.wait_card(fields)
        if card is None:
            error = Lazy("portal.no_idcard", timeout=int(self.tap_timeout))
            return self.unit_page(request, unit_id, status=408, error=error)
        if card.kind is not CredentialKind.IDCARD:
            return self.unit_page(request, unit_id, status=400, error=Lazy("portal.not_idcard"))
        name = card.name or ""
        prefill = {
            "name": name,
            "id_number": card.value,
            "valid_from": fields.get("valid_from", ""),
            "valid_to": fields.get("valid_to", ""),
        }
        ok = Lazy("portal.idcard_read", name=name)
        return self.unit_page(request, unit_id, ok=ok, prefill=prefill)

    # --- faces ---------------------------------------------------------------------------

    def _sweep_captures(self) -> None:
        now = time.monotonic()
        for token in [k for k, v in self.captures.items() if v.expires <= now]:
            del self.captures[token]
        while len(self.captures) >= MAX_PENDING_CAPTURES:  # oldest first (insertion order)
            del self.captures[next(iter(self.captures))]

    async def capture(self, request: Request) -> Response:
        """POST: "look at the camera" for a tenant; shows the crop, or why it is not usable.

        A usable face waits in memory under a random token for `CAPTURE_TTL_S` seconds; the
        crop goes to the browser inline (``data:`` URL, ``no-store``) and nowhere else.
        """
        user = self.require(request)
        occupant = self.writable_occupant(request, user)
        occupant_id, unit_id = occupant.id, occupant.unit_id
        fields = await self.form(request)
        camera = fields.get("camera") or (next(iter(sorted(self.cameras)), ""))
        capture_fn = self.cameras.get(camera)
        if capture_fn is None:
            raise HTTPException(400)
        try:
            result = await capture_fn()
        except (FaceError, OSError, TimeoutError):
            result = FaceCapture(False, "unavailable")
        self._sweep_captures()
        shown: dict[str, Any] = {
            "occupant_id": occupant_id,
            "camera": camera,
            "ok": result.ok,
            "quality": f"{result.quality:.2f}",
            "reason": Lazy(f"portal.face.{result.reason}") if result.reason else None,
            "img": (
                "data:image/jpeg;base64," + base64.b64encode(result.crop_jpeg).decode()
                if result.crop_jpeg
                else None
            ),
        }
        if result.ok and result.encoding is not None:
            token = secrets.token_urlsafe(24)
            self.captures[token] = PendingCapture(
                occupant_id, user["name"], camera, result.encoding, result.quality,
                time.monotonic() + CAPTURE_TTL_S,
            )
            shown["token"] = token
        status = 200 if result.ok else 422
        return self.unit_page(request, unit_id, status=status, captured=shown)

    async def use_face(self, request: Request) -> Response:
        """POST: keep the shown capture as the tenant's face template."""
        user = self.require(request)
        occupant = self.writable_occupant(request, user)
        occupant_id, unit_id = occupant.id, occupant.unit_id
        fields = await self.form(request)
        self._sweep_captures()
        pending = self.captures.get(fields.get("token", ""))
        if pending is None or pending.occupant_id != occupant_id or pending.user != user["name"]:
            return self.unit_page(
                request, unit_id, status=410, error=Lazy("portal.capture_gone")
            )
        del self.captures[fields["token"]]
        try:
            face_db.add_template(
                self.store.db, occupant_id, pending.encoding, f"camera:{pending.camera}",
                pending.quality,
            )
        except SyncError as err:
            return self.unit_page(request, unit_id, status=400, error=_message(err))
        self.portal.audit(
            user["name"], "face", unit_id=unit_id, occupant_id=occupant_id,
            detail=f"{pending.camera} q={pending.quality:.2f}",
        )
        await self.changed()
        count = face_db.template_count(self.store.db, occupant_id)
        ok = Lazy("portal.face_saved", name=occupant.name, count=count)
        return self.unit_page(request, unit_id, ok=ok)

    async def wrong_face(self, request: Request) -> Response:
        """POST (multipart): "not this person": a photo of the look-alike becomes a negative
        template of the tenant, so that face no longer opens the door as them.

        The photo is judged in a separate process, in memory; only its encoding is kept.
        """
        user = self.require(request)
        occupant = self.writable_occupant(request, user)
        occupant_id, unit_id = occupant.id, occupant.unit_id
        fields, files = await self.multipart(request)
        photo = files.get("photo", b"")
        if not photo:
            return self.unit_page(
                request, unit_id, status=400, error=Lazy("portal.photo_missing")
            )
        if len(photo) > MAX_PHOTO_BYTES:
            error = Lazy("portal.photo_too_big", mb=MAX_PHOTO_BYTES // 2**20)
            return self.unit_page(request, unit_id, status=413, error=error)
        try:
            face = await self.photo_analyser(photo)
        except PhotoRejected as err:
            reason = Lazy(f"portal.face.{err.reason.value}")
            error = Lazy("portal.photo_bad", reason=reason)
            return self.unit_page(request, unit_id, status=422, error=error)
        except FaceError:
            error = Lazy("portal.photo_bad", reason=Lazy("portal.face.unavailable"))
            return self.unit_page(request, unit_id, status=503, error=error)
        del photo
        try:
            face_db.mark_wrong(self.store.db, occupant_id, face.encoding)
        except SyncError as err:
            return self.unit_page(request, unit_id, status=400, error=_message(err))
        event = fields.get("event", "")[:40]
        self.portal.audit(
            user["name"], "face_wrong", unit_id=unit_id, occupant_id=occupant_id,
            detail=f"event {event}" if event else "",
        )
        await self.changed()
        ok = Lazy("portal.marked_wrong", name=occupant.name)
        return self.unit_page(request, unit_id, ok=ok)

    # --- self-declarations -----------------------------------------------------------------

    def declared_occupant(self, request: Request, user: dict[str, Any]) -> Occupant:
        """The occupant of an unconfirmed self-declaration `user` may handle."""
        occupant = self.writable_occupant(request, user)
        if occupant.id not in self.portal.occupant_declared([occupant.id]):
            raise HTTPException(409, detail="not_declared")
        return occupant

    async def confirm(self, request: Request) -> Response:
        """POST: the landlord confirms a tenant's self-declaration (then binds their card)."""
        user = self.require(request)
        occupant = self.declared_occupant(request, user)
        occupant_id, unit_id = occupant.id, occupant.unit_id
        await self.form(request)
        self.portal.audit(
            user["name"], "confirm", unit_id=unit_id, occupant_id=occupant_id,
            detail=occupant.id_masked,
        )
        return self.unit_page(request, unit_id, ok=Lazy("portal.confirmed", name=occupant.name))

    async def reject(self, request: Request) -> Response:
        """POST: the landlord rejects a self-declaration: the pending occupant is deleted."""
        user = self.require(request)
        occupant = self.declared_occupant(request, user)
        occupant_id, unit_id = occupant.id, occupant.unit_id
        await self.form(request)
        try:
            self.store.reject_declaration(occupant_id)
        except SyncError as err:
            return self.unit_page(request, unit_id, status=400, error=_message(err))
        self.portal.audit(
            user["name"], "reject_declaration", unit_id=unit_id, occupant_id=occupant_id,
            detail=occupant.id_masked,
        )
        await self.changed()
        return self.unit_page(request, unit_id, ok=Lazy("portal.rejected", name=occupant.name))

    # --- visitor passes --------------------------------------------------------------------

    def local_time(self, text: str) -> datetime:
        """A ``datetime-local`` form value as an aware time in the site's time zone."""
        try:
            moment = datetime.fromisoformat(text)
        except ValueError as err:
            raise FormError(Lazy("portal.bad_datetime")) from err
        return moment.replace(tzinfo=self.tz) if moment.tzinfo is None else moment

    async def issue_pass(self, request: Request) -> Response:
        """POST: issue a visitor pass bound to the visitor's ID card."""
        user = self.require(request)
        unit_id = request.path_params["unit_id"]
        self.writable_unit(user, unit_id)
        fields = await self.form(request)
        try:
            row = self.portal.issue_pass(
                unit_id,
                fields.get("name", ""),
                fields.get("id_number", ""),
                valid_from=self.local_time(fields.get("valid_from", "")),
                valid_to=self.local_time(fields.get("valid_to", "")),
                max_uses=_uses(fields.get("max_uses", "")),
                by=user["name"],
                hash_id=self.store.hash_id_number,
            )
        except FormError as err:
            return self.unit_page(request, unit_id, status=400, error=err.message)
        except SyncError as err:
            return self.unit_page(request, unit_id, status=400, error=_message(err))
        self.portal.audit(
            user["name"], "pass_issue", unit_id=unit_id,
            detail=f"{row['id']} {row['id_masked']} {row['valid_from'][:16]}"
            f"~{row['valid_to'][:16]}",
        )
        await self.changed()
        ok = Lazy(
            "portal.pass_issued", name=row["name_masked"], from_=row["valid_from"][:16],
            to=row["valid_to"][:16],
        )
        return self.unit_page(request, unit_id, ok=ok)

    async def revoke_pass(self, request: Request) -> Response:
        """POST: withdraw a visitor pass."""
        user = self.require(request)
        pass_id = request.path_params["pass_id"]
        try:
            unit_id = self.portal.get_pass(pass_id)["unit_id"]
        except NotFound as err:
            raise HTTPException(404) from err
        self.writable_unit(user, unit_id)
        await self.form(request)
        row = self.portal.revoke_pass(pass_id)
        self.portal.audit(
            user["name"], "pass_revoke", unit_id=unit_id, detail=f"{pass_id} {row['id_masked']}"
        )
        await self.changed()
        return self.unit_page(request, unit_id, ok=Lazy("portal.pass_revoked", id=pass_id))

    async def approve(self, request: Request) -> Response:
        """POST: approve locally (buildings without a station, or a station admin on site)."""
        user = self.require(request)
        occupant = self.writable_occupant(request, user)
        occupant_id, unit_id = occupant.id, occupant.unit_id
        await self.form(request)
        if not self.can_approve(user):
            raise HTTPException(403)
        try:
            occupant = self.store.approve(
                occupant_id, by=user["name"], capacity_policy=self.config.station.capacity_policy
            )
        except SyncError as err:
            return self.unit_page(request, unit_id, status=400, error=_message(err))
        self.portal.audit(user["name"], "approve", unit_id=unit_id, occupant_id=occupant_id)
        await self.changed()
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
        return self.render(request, "qr.html", unit_id=unit_id, link=link, svg=qr_svg(link))

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
            occupant = self.add_occupant(unit_id, fields)
        except (ValueError, SyncError) as err:
            self.limiter.fail(f"declare:{host}")
            return self.render(
                request, "declare.html", 400, unit_id=unit_id, key=key, user=None,
                error=_message(err),
            )
        self.portal.audit(
            "tenant@" + host, "declare", unit_id=unit_id, occupant_id=occupant.id,
            detail=occupant.id_masked,
        )
        await self.changed()
        return self.render(
            request, "declare.html", unit_id=unit_id, key=key, user=None, done=True
        )


def _status_view(status: UnitStatus | None) -> dict[str, Any]:
    """A unit's colour (grey while the daemon has not loaded the unit) and reason codes."""
    if status is None:
        return {"colour": Colour.GREY.value, "reasons": []}
    return {"colour": status.colour.value, "reasons": list(status.reasons)}


def _uses(text: str) -> int | None:
    """The "entries allowed" field: empty for no limit, else a whole number."""
    text = text.strip()
    if not text:
        return None
    if not text.isdigit():
        raise FormError(Lazy("portal.bad_uses"))
    return int(text)


def pass_state(row: dict[str, Any], now: datetime) -> str:
    """``revoked``, ``expired``, ``upcoming``, ``used_up`` or ``active``."""
    if row["revoked"]:
        return "revoked"
    if datetime.fromisoformat(row["valid_to"]) < now:
        return "expired"
    if row["max_uses"] is not None and row["uses"] >= row["max_uses"]:
        return "used_up"
    if datetime.fromisoformat(row["valid_from"]) > now:
        return "upcoming"
    return "active"


def qr_svg(link: str) -> Markup:
    """The link as a QR code in inline SVG (no image file, no script, prints sharply)."""
    code = segno.make(link, error="m", micro=False)
    svg = code.svg_inline(scale=6, border=2, dark="#000", light="#fff", title=None)
    return Markup(svg)  # noqa: S704 - generated by segno from our own link, no user markup


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
    if exc.detail == "not_declared":
        key = "portal.not_declared"
    message = Lazy(key) if key else Lazy("portal.error", message=exc.detail)
    return portal.render(request, "error.html", exc.status_code, message=message)


def create_app(config: GatewayConfig, store: Store, **options: Any) -> Starlette:
    """The portal as an ASGI app (``app.state.portal`` holds the `Portal`).

    Args:
        config: the gateway configuration.
        store: an open gateway store.
        options: the `Portal`'s keyword arguments: ``secret`` (derive it with `portal_secret`),
            ``taps`` (the daemon's `TapHub`), ``tap_timeout``, ``limiter``, ``cameras`` (the
            daemon passes its cameras' `FaceService.capture`), ``photo_analyser``, ``on_change``
            (``Gateway.reload_site``) and ``unit_statuses`` (``Gateway.unit_statuses``).
    """
    portal = Portal(config, store, **options)
    p = portal
    routes = [
        Route("/", p.home),
        Route("/login", p.signin.login, methods=["GET", "POST"]),
        Route("/logout", p.signin.logout, methods=["POST"]),
        Route("/units", p.units),
        Route("/units/{unit_id}", p.unit),
        Route("/units/{unit_id}/enrol", p.enrol, methods=["POST"]),
        Route("/units/{unit_id}/qr", p.qr),
        Route("/units/{unit_id}/read-idcard", p.read_idcard, methods=["POST"]),
        Route("/units/{unit_id}/passes", p.issue_pass, methods=["POST"]),
        Route("/passes/{pass_id}/revoke", p.revoke_pass, methods=["POST"]),
        Route("/occupants/{occupant_id}/capture", p.capture, methods=["POST"]),
        Route("/occupants/{occupant_id}/use-face", p.use_face, methods=["POST"]),
        Route("/occupants/{occupant_id}/wrong-face", p.wrong_face, methods=["POST"]),
        Route("/occupants/{occupant_id}/confirm", p.confirm, methods=["POST"]),
        Route("/occupants/{occupant_id}/reject", p.reject, methods=["POST"]),
        Route("/declare/{unit_id}", p.declare, methods=["GET", "POST"], name="declare"),
        Route("/occupants/{occupant_id}/card", p.tap, methods=["POST"]),
        Route("/occupants/{occupant_id}/move-out", p.move_out, methods=["POST"]),
        Route("/occupants/{occupant_id}/renew", p.renew, methods=["POST"]),
        Route("/occupants/{occupant_id}/approve", p.approve, methods=["POST"]),
        Route("/audit", p.audit),
        Mount("/static", static_files(HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
    app.state.portal = portal
    return app


def portal_secret(hash_key: bytes) -> bytes:
    """The portal's key, derived from the gateway's hash key (stable across restarts)."""
    return derive_secret(hash_key, "doorgate-portal/1")

