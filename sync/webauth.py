"""Web sign-in helpers shared by the landlord portal and the station dashboard (stdlib only).

Passwords are stored as scrypt hashes (``scrypt$n$r$p$salt$hash``); session tokens are random and
stored only as SHA-256 digests; CSRF tokens are an HMAC of the browser's cookie, so a page from
another origin cannot forge one. `RateLimiter` slows password guessing per account and address.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable

ROLES = ("landlord", "station_staff", "station_admin")
_N, _R, _P = 2**14, 8, 1
MIN_PASSWORD = 8


def hash_password(password: str) -> str:
    """A salted scrypt hash of `password`, self-describing (parameters and salt included).

    Raises:
        ValueError: the password is shorter than `MIN_PASSWORD` characters.
    """
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"password must be at least {MIN_PASSWORD} characters")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """True when `password` matches the `stored` hash (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        candidate = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(candidate.hex(), digest)


def new_token() -> str:
    """A fresh random session or cookie token (URL-safe)."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What the database keeps of a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(secret: bytes, cookie: str) -> str:
    """The CSRF token bound to a browser's cookie value."""
    return hmac.new(secret, b"csrf:" + cookie.encode(), hashlib.sha256).hexdigest()


def check_csrf(secret: bytes, cookie: str | None, token: str | None) -> bool:
    """True when `token` is the CSRF token for `cookie`."""
    if not cookie or not token:
        return False
    return hmac.compare_digest(csrf_token(secret, cookie), token)


def derive_secret(key: bytes, purpose: str) -> bytes:
    """A purpose-specific secret derived from a master key (HMAC-SHA256)."""
    return hmac.new(key, purpose.encode(), hashlib.sha256).digest()


class RateLimiter:
    """At most `limit` failures per key within `window` seconds; then the key must wait.

    Args:
        limit: failures allowed in the window.
        window: seconds a failure counts against its key.
        clock: monotonic time source (tests pass a fake one).
    """

    def __init__(
        self, limit: int = 5, window: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        now = self._clock()
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def blocked(self, *keys: str) -> bool:
        """True when any key has used up its failures."""
        return any(len(self._recent(k)) >= self.limit for k in keys)

    def fail(self, *keys: str) -> None:
        """Count a failed attempt against every key."""
        now = self._clock()
        for key in keys:
            self._recent(key).append(now)

    def reset(self, *keys: str) -> None:
        """Forget the failures of these keys (after a successful sign-in)."""
        for key in keys:
            self._failures.pop(key, None)
