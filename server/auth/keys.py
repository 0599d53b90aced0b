"""The site's secret keys, each made once and kept in the data directory (readable by the
owner only), unless a setting gives it: the key of the pseudonyms (server/fhir/pseudonymise.py:
a keyed hash of an identifier, the same in every export, that nobody without the key can
compute; KERMA_PSEUDONYM_KEY) and the key that signs SMART access tokens (server/auth/smart.py;
KERMA_TOKEN_KEY, the same for every process that serves the same store)."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from server.config import Settings


def site_key(settings: Settings) -> bytes:
    """The pseudonyms' key."""
    return _secret(settings.pseudonym_key, settings.data_dir / "pseudonym.key")


def token_key(settings: Settings) -> bytes:
    """The key that signs and checks SMART access tokens (HMAC-SHA-256)."""
    return _secret(settings.token_key, settings.data_dir / "token.key")


def session_key(settings: Settings) -> bytes:
    """The key that signs the web console's session cookies: derived from the token key, so
    every process that checks tokens also checks sessions."""
    return hmac.digest(token_key(settings), b"kerma web console session", "sha256")


def _secret(configured: str, path: Path) -> bytes:
    if configured:
        return configured.encode()
    if not path.exists():
        _write_private(path, secrets.token_hex(32))
    return path.read_text(encoding="ascii").strip().encode()


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return
    with os.fdopen(descriptor, "w", encoding="ascii") as out:
        out.write(text)
