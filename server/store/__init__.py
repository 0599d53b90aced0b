"""Persistence: the `Store` port and its adapters (SQLite embedded default, MongoDB)."""

from __future__ import annotations

from server.config import Settings
from server.store.port import Duplicate as Duplicate
from server.store.port import Index as Index
from server.store.port import Store as Store
from server.store.port import Stored as Stored
from server.store.port import StoreError as StoreError
from server.store.port import User as User
from server.store.port import VersionConflict as VersionConflict
from server.store.port import Write as Write


def open_store(settings: Settings) -> Store:
    """The store `KERMA_STORE` names: empty for SQLite under KERMA_DATA_DIR, or mongodb://..."""
    if settings.store.startswith(("mongodb://", "mongodb+srv://")):
        from server.store.mongodb import MongoStore  # optional dependency: the [mongodb] extra

        return MongoStore(settings.store)
    if settings.store not in ("", "sqlite"):
        raise ValueError(
            f"KERMA_STORE must be empty, 'sqlite' or a mongodb:// URL, got {settings.store!r}"
        )
    from server.store.sqlite import SqliteStore

    return SqliteStore(settings.sqlite_path)
