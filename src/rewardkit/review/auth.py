"""Annotator tokens, signed session cookies and CSRF tokens for the labeling page.

- A token is 32 random bytes (urlsafe base64), printed once by ``rewardkit review annotator add``; the store
  keeps its SHA-256 (a 256-bit random secret cannot be guessed from its hash, so no slow hash is needed).
- A session cookie is ``name|expiry|nonce`` signed with HMAC-SHA256 under the server's secret; it is
  HttpOnly, SameSite=Strict, Secure when served over https, and never outlives the annotator's token.
- CSRF: every form carries ``csrf = HMAC(secret, "csrf" | cookie nonce)`` where the cookie is the session (or,
  before login, a signed pre-session cookie); a POST whose field does not match is refused with 403. SameSite
  alone would stop most cross-site posts; the token also covers browsers and proxies that ignore SameSite.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.strip().encode("utf-8")).hexdigest()


def _sign(secret: bytes, payload: str) -> str:
    mac = hmac.new(secret, payload.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class Session:
    name: str
    expires: datetime
    nonce: str


def make_session_cookie(secret: bytes, name: str, expires: datetime) -> str:
    nonce = secrets.token_urlsafe(16)
    payload = base64.urlsafe_b64encode(f"{name}|{int(expires.timestamp())}|{nonce}".encode()).decode("ascii")
    return f"{payload}.{_sign(secret, payload)}"


def read_session_cookie(secret: bytes, cookie: str | None, now: datetime) -> Session | None:
    """The session a cookie carries, or None when it is missing, forged, malformed or expired."""
    if not cookie or "." not in cookie:
        return None
    payload, mac = cookie.rsplit(".", 1)
    if not hmac.compare_digest(mac, _sign(secret, payload)):
        return None
    try:
        name, expiry, nonce = base64.urlsafe_b64decode(payload.encode("ascii")).decode("utf-8").split("|", 2)
        expires = datetime.fromtimestamp(int(expiry), tz=UTC)
    except (ValueError, UnicodeDecodeError):
        return None
    return Session(name, expires, nonce) if expires > now else None


def make_pre_cookie(secret: bytes) -> str:
    nonce = secrets.token_urlsafe(16)
    return f"{nonce}.{_sign(secret, 'pre|' + nonce)}"


def read_pre_cookie(secret: bytes, cookie: str | None) -> str | None:
    if not cookie or "." not in cookie:
        return None
    nonce, mac = cookie.rsplit(".", 1)
    return nonce if hmac.compare_digest(mac, _sign(secret, "pre|" + nonce)) else None


def csrf_token(secret: bytes, nonce: str) -> str:
    return _sign(secret, "csrf|" + nonce)


def csrf_ok(secret: bytes, nonce: str | None, sent: str | None) -> bool:
    return bool(nonce) and bool(sent) and hmac.compare_digest(csrf_token(secret, nonce or ""), sent or "")
