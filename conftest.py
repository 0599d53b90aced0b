"""The server's doctests (--doctest-modules, pyproject.toml) are looked for only in its modules
that have one: importing every module to look cost each test process seconds, most of it
server/preload_http.py, which builds the GraphQL schema when imported."""

from __future__ import annotations

from pathlib import Path

import pytest

SERVER = Path(__file__).parent / "server"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.suffix != ".py" or not collection_path.is_relative_to(SERVER):
        return None
    if ">>>" not in collection_path.read_text(encoding="utf-8"):
        return True
    return None
