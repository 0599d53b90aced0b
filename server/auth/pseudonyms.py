"""The key of the site's pseudonyms (server/fhir/pseudonymise.py: a keyed hash of an
identifier, so that the same patient or study gets the same pseudonym in every export of the
site, and nobody without the key can compute it from the identifier): KERMA_PSEUDONYM_KEY,
else a random key kept in the data directory (made on first use, readable by the owner
only)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from server.config import Settings


def site_key(settings: Settings) -> bytes:
    if settings.pseudonym_key:
        return settings.pseudonym_key.encode()
    path = settings.data_dir / "pseudonym.key"
    if not path.exists():
        _write_private(path, secrets.token_hex(32))
    return path.read_text(encoding="ascii").strip().encode()


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as out:
        out.write(text)
