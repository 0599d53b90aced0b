"""Users and their bearer tokens. A token is shown once and only its SHA-256 is kept.

Tokens are 256 random bits, so a plain hash is enough: there is nothing to brute-force, and
a lookup by hash stays an index probe on every request.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from server.auth.roles import role
from server.store.port import Store, User

TOKEN_PREFIX = "kerma_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_user(store: Store, name: str, role_name: str, devices: tuple[str, ...] = ()) -> str:
    """Create a user; returns the new bearer token (the only time it exists in clear)."""
    role(role_name)
    if not name or not name.isprintable():
        raise ValueError("a user name must be printable and not empty")
    bad = [d for d in devices if not d.startswith("Device/")]
    if bad:
        raise ValueError(f"devices are given as Device/<id>, got {', '.join(bad)}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    store.add_user(User(name, role_name, hash_token(token), time.time(), devices))
    return token


def authenticate(store: Store, authorization: str | None) -> User | None:
    """The active user a `Bearer` Authorization header names, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    user = store.user_by_token(hash_token(token.strip()))
    return user if user is not None and user.active else None
