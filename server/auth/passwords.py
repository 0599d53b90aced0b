"""Passwords for the web console's sign-in: argon2id hashes (argon2-cffi, RFC 9106's defaults),
and a throttle that refuses sign-ins for a while after repeated failures, per user name and
per client address, counted in the store so every process of a site sees the same count."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from server.store.port import Store, User

_HASHER = PasswordHasher()
MIN_LENGTH = 12


@dataclass(frozen=True)
class Throttle:
    attempts: int  # failures of one user name allowed within the window
    window_s: float  # how long a name or an address stays locked after them
    # an address may be a ward's shared workstation or a proxy: it gets more attempts
    address_factor: int = 4


@functools.cache
def _nobody() -> str:
    """The hash checked when the user does not exist, so that a wrong name takes as long as a
    wrong password. Made when first needed: 0.1 s of a core (and 64 MiB) in each of the many
    processes that import this module and never sign anyone in."""
    return _HASHER.hash("no user has this password")


class SignInRefused(Exception):
    """The reason shown on the sign-in page (never which of name and password was wrong)."""


def hash_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise ValueError(f"a password needs at least {MIN_LENGTH} characters")
    return _HASHER.hash(password)


def set_password(store: Store, name: str, password: str) -> None:
    if not store.set_password(name, hash_password(password)):
        raise ValueError(f"no user {name!r}")


def sign_in(store: Store, name: str, password: str, address: str, throttle: Throttle) -> User:
    """The active user with this name and password, or SignInRefused."""
    now = time.time()
    keys = (f"user:{name}", f"address:{address}")
    limits = (throttle.attempts, throttle.attempts * throttle.address_factor)
    since = now - throttle.window_s
    if any(store.failed_sign_ins(k, since) >= n for k, n in zip(keys, limits, strict=True)):
        minutes = round(throttle.window_s / 60)
        raise SignInRefused(f"too many failed sign-ins; try again in {minutes} minutes")
    user = store.user_by_name(name)
    known = user is not None and bool(user.password_hash)
    matches = _matches(user.password_hash if user and known else _nobody(), password)
    if user is None or not (known and matches and user.active):
        for key in keys:
            store.record_failed_sign_in(key, now)
        raise SignInRefused("the name or the password is wrong")
    store.clear_failed_sign_ins(keys[0])
    if _HASHER.check_needs_rehash(user.password_hash):  # parameters raised since it was set
        store.set_password(name, _HASHER.hash(password))
    return user


def _matches(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
