"""Objects that could not be read: kept byte for byte with their reason, until reprocessed."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from server.files import write_durably


@dataclass(frozen=True)
class Quarantined:
    path: Path  # the object's bytes
    name: str  # the name it arrived with
    reason: str
    received: float


class Quarantine:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def put(self, data: bytes, name: str, reason: str) -> Path:
        """Store the bytes and the reason, fsynced: quarantine is where nothing may get lost."""
        self.folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(data).hexdigest()[:16]
        target = self.folder / f"{digest}.dcm"
        write_durably(target, data)
        meta = {"name": name, "reason": reason, "received": time.time()}
        write_durably(target.with_suffix(".json"), json.dumps(meta).encode())
        return target

    def items(self) -> list[Quarantined]:
        found: list[Quarantined] = []
        for meta_path in sorted(self.folder.glob("*.json")) if self.folder.exists() else []:
            meta = json.loads(meta_path.read_text())
            found.append(
                Quarantined(
                    meta_path.with_suffix(".dcm"), meta["name"], meta["reason"], meta["received"]
                )
            )
        return found

    def release(self, item: Quarantined) -> None:
        """Forget an object that has now been read."""
        item.path.unlink(missing_ok=True)
        item.path.with_suffix(".json").unlink(missing_ok=True)
