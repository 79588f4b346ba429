"""Staff sessions: a signed cookie, CSRF tokens and throttled sign-in.

* **The cookie** holds the account's id, a version of its password hash (so a
  ``make staff reset`` or ``remove`` ends every session at once) and the CSRF
  token, signed with itsdangerous under a server secret: ``STAFF_SESSION_SECRET``
  (the same value on every server of a cluster that spans machines), else the
  file ``staff-session.key`` next to the tracker store (``var/``), created with
  mode 600 on first run (assistant/shared/action_secret.py's ``read_or_create``). It
  is HttpOnly, SameSite=Strict, limited to /staff, and Secure when the request
  came over HTTPS (directly, or ``X-Forwarded-Proto: https`` from the proxy).
* **Sign-out** ends the account's sessions on the server too (a counter in
  the account that the cookie's version includes), so a copied cookie is no
  use after its owner signed out.
* **Idle timeout.** The signature carries its time and every signed-in request
  signs the cookie again, so a session ends ``STAFF_IDLE_MINUTES`` (default 30)
  after its last use; an older cookie is refused as expired.
* **CSRF.** Every form carries the token from the cookie (a visitor who has not
  signed in gets one with the sign-in page); a POST whose token doesn't match is
  refused with 403 before anything else happens. SameSite=Strict alone would
  leave older browsers open.
* **Throttling.** Failed sign-ins are counted with the `limits` package in the
  same storage as the chat's rate limits (assistant/rasa_server/rate_limits.py: SQLite next
  to the tracker store, Redis in the cluster): per account (5 per 15 minutes)
  and per address (30 per 15 minutes), keyed by a keyed hash, never the address
  or e-mail as such. Over either, sign-in is refused without checking the
  password, with the minutes to wait.
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from limits import parse_many
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from assistant.paths import beside_tracker_db
from assistant.rasa_server import rate_limits  # noqa: F401  (registers the SQLite storage of the counters)
from assistant.rasa_server.conversation_token import client_key
from assistant.rasa_server.rate_limits import storage_uri
from assistant.shared.action_secret import SecretError, check_secret, read_or_create
from assistant.shared.private_files import make_private_dir

SECRET_ENV = "STAFF_SESSION_SECRET"
SECRET_FILE_NAME = "staff-session.key"
IDLE_ENV = "STAFF_IDLE_MINUTES"
DEFAULT_IDLE_MINUTES = 30
COOKIE_NAME = "staff_session"
COOKIE_PATH = "/staff"
CSRF_FIELD = "csrf_token"
_SALT = "staff-session"
# Failed sign-ins allowed before a pause (notation of the `limits` package).
FAILURES_PER_ACCOUNT = "5 per 15 minutes"
FAILURES_PER_ADDRESS = "30 per 15 minutes"
_THROTTLE_NAMESPACE = "staff_sign_in"
_CREATE_ATTEMPTS = 20


class SessionConfigError(ValueError):
    """A session setting is unusable; the message names it."""


def secret_file() -> Path:
    """Next to the tracker store (the launcher exports TRACKER_DB), i.e. var/ by default."""
    return beside_tracker_db(SECRET_FILE_NAME)


def session_secret() -> str:
    if os.environ.get(SECRET_ENV):
        return check_secret(os.environ[SECRET_ENV], SECRET_ENV)
    path = secret_file()
    make_private_dir(path.parent)
    for _ in range(_CREATE_ATTEMPTS):
        try:
            return read_or_create(path)
        except SecretError:  # another worker created the file and is still writing it
            time.sleep(0.05)
    return read_or_create(path)  # still unusable: let its error say why


def idle_seconds() -> int:
    raw = os.environ.get(IDLE_ENV, str(DEFAULT_IDLE_MINUTES))
    try:
        minutes = float(raw)
    except ValueError:
        minutes = 0
    if minutes <= 0:
        raise SessionConfigError(f"{IDLE_ENV} must be a positive number of minutes, not {raw!r}")
    return int(minutes * 60)


@dataclass(frozen=True)
class SessionData:
    csrf: str
    account_id: Optional[int] = None
    version: str = ""  # the account's password version when it signed in

    @staticmethod
    def anonymous() -> SessionData:
        return SessionData(csrf=secrets.token_urlsafe(32))

    def signed_in(self, account_id: int, version: str) -> SessionData:
        """A new CSRF token too: nothing learnt before signing in is valid after."""
        return SessionData(csrf=secrets.token_urlsafe(32), account_id=account_id, version=version)


class SessionCodec:
    """Turns session data into a cookie value and back."""

    def __init__(self, secret: str, max_age: int) -> None:
        self.max_age = max_age
        self._serializer = URLSafeTimedSerializer(secret, salt=_SALT)

    def dumps(self, data: SessionData) -> str:
        payload: Dict[str, Any] = {"c": data.csrf}
        if data.account_id is not None:
            payload.update(a=data.account_id, v=data.version)
        return str(self._serializer.dumps(payload))

    def loads(self, value: Optional[str]) -> Tuple[Optional[SessionData], bool]:
        """(the session, whether it had expired); (None, False) when absent or forged."""
        if not value:
            return None, False
        try:
            payload = self._serializer.loads(value, max_age=self.max_age)
        except SignatureExpired:
            return None, True
        except BadSignature:
            return None, False
        if not isinstance(payload, dict) or not isinstance(payload.get("c"), str):
            return None, False
        account = payload.get("a")
        return SessionData(csrf=payload["c"], account_id=account if isinstance(account, int) else None,
                           version=str(payload.get("v", ""))), False


@lru_cache(maxsize=1)
def codec() -> SessionCodec:
    return SessionCodec(session_secret(), idle_seconds())


def csrf_valid(session: Optional[SessionData], submitted: Optional[str]) -> bool:
    return (session is not None and isinstance(submitted, str)
            and hmac.compare_digest(session.csrf.encode(), submitted.encode()))


def cookie_settings(https: bool, max_age: int) -> Dict[str, Any]:
    settings: Dict[str, Any] = {"httponly": True, "samesite": "Strict", "path": COOKIE_PATH,
                                "max-age": max_age}
    if https:
        settings["secure"] = True
    return settings


class SignInThrottle:
    """Counts failed sign-ins per account and per address; says how long to wait."""

    def __init__(self, uri: str) -> None:
        self._strategy = FixedWindowRateLimiter(storage_from_string(uri))
        self._limits = ((list(parse_many(FAILURES_PER_ACCOUNT)), "account"),
                        (list(parse_many(FAILURES_PER_ADDRESS)), "address"))

    def _keys(self, email: str, address: Optional[str]) -> Tuple[Optional[str], Optional[str]]:
        return client_key(f"staff:{email.strip().lower()}"), client_key(address) if address else None

    def wait_seconds(self, email: str, address: Optional[str]) -> Optional[int]:
        """Seconds until another attempt is allowed, or None when it is allowed now."""
        for (items, kind), key in zip(self._limits, self._keys(email, address), strict=True):
            if key is None:
                continue
            for item in items:
                if not self._strategy.test(item, _THROTTLE_NAMESPACE, kind, key):
                    reset_at, _ = self._strategy.get_window_stats(item, _THROTTLE_NAMESPACE, kind, key)
                    return max(1, int(reset_at - time.time() + 0.999))
        return None

    def failed(self, email: str, address: Optional[str]) -> None:
        for (items, kind), key in zip(self._limits, self._keys(email, address), strict=True):
            if key is not None:
                for item in items:
                    self._strategy.hit(item, _THROTTLE_NAMESPACE, kind, key)


@lru_cache(maxsize=1)
def throttle() -> SignInThrottle:
    return SignInThrottle(storage_uri())
