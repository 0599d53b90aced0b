"""Users and their bearer tokens. A token is shown once and only its SHA-256 is kept.

Tokens are 256 random bits, so a plain hash is enough: there is nothing to brute-force, and
a lookup by hash stays an index probe on every request.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time

from server.auth import smart
from server.auth.roles import role
from server.store.port import Store, User

TOKEN_PREFIX = "kerma_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_user(store: Store, name: str, role_name: str, devices: tuple[str, ...] = ()) -> str:
    """Create a user; returns the new bearer token (the only time it exists in clear)."""
    _check(name, role_name, devices)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    store.add_user(User(name, role_name, hash_token(token), time.time(), devices))
    return token


def reissue_token(store: Store, name: str) -> str:
    """A new bearer token for a user (a lost or leaked one); the old token stops working."""
    user = store.user_by_name(name)
    if user is None:
        raise ValueError(f"no user {name!r}; see kerma users list")
    if user.jwks:
        raise ValueError(f"{name} is a SMART client: it gets access tokens at /auth/token")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    store.set_token_hash(name, hash_token(token))
    return token


def add_client(
    store: Store, name: str, role_name: str, jwks: str, devices: tuple[str, ...] = ()
) -> None:
    """Register a SMART backend services client with its public keys (a JWKS); it has no
    static token (an unguessable hash stands in) and gets access tokens at /auth/token."""
    keys = json.loads(jwks).get("keys") if jwks.strip().startswith("{") else None
    if not keys or not all(isinstance(k, dict) and k.get("kty") in ("RSA", "EC") for k in keys):
        raise ValueError("--jwks must be a JSON Web Key Set of RSA or EC public keys")
    if any("d" in k for k in keys):
        raise ValueError("the JWKS holds a private key: register the public keys only")
    _check(name, role_name, devices)
    unusable = hash_token(secrets.token_urlsafe(32)) + "-client"
    store.add_user(User(name, role_name, unusable, time.time(), devices, jwks=jwks))


def _check(name: str, role_name: str, devices: tuple[str, ...]) -> None:
    role(role_name)
    if not name or not name.isprintable():
        raise ValueError("a user name must be printable and not empty")
    bad = [d for d in devices if not d.startswith("Device/")]
    if bad:
        raise ValueError(f"devices are given as Device/<id>, got {', '.join(bad)}")


def authenticate(
    store: Store, authorization: str | None, token_key: bytes | None = None
) -> User | None:
    """The active user a `Bearer` Authorization header names, or None: a static token of
    `kerma users add`, or a SMART access token (a JWT Kerma signed with `token_key`)."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    if token_key is not None and token.count(".") == 2:
        return smart.verify(store, token, token_key)
    user = store.user_by_token(hash_token(token))
    return user if user is not None and user.active else None
