"""Settings come from KERMA_* variables only, and docs/operations.md documents every one of them."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from server.config import Settings

OPERATIONS = Path(__file__).parent.parent / "docs" / "operations.md"


def test_readme_table_lists_every_setting() -> None:
    documented = set(re.findall(r"^\| `(KERMA_[A-Z0-9_]+)` \|", OPERATIONS.read_text(), re.M))
    declared = {f"KERMA_{f.name.upper()}" for f in dataclasses.fields(Settings)}
    assert documented == declared


def test_values_are_read_and_typed() -> None:
    s = Settings.from_env(
        {"KERMA_HTTP_PORT": "9090", "KERMA_DATA_DIR": "/srv/kerma", "PATH": "/bin"}
    )
    assert s.http_port == 9090 and s.data_dir == Path("/srv/kerma")
    assert s.sqlite_path == Path("/srv/kerma/kerma.sqlite3")


def test_unknown_or_malformed_settings_are_errors() -> None:
    with pytest.raises(ValueError, match="KERMA_HTTP_PROT"):
        Settings.from_env({"KERMA_HTTP_PROT": "1"})
    with pytest.raises(ValueError, match="whole number"):
        Settings.from_env({"KERMA_HTTP_PORT": "eighty"})
    assert Settings.from_env({"KERMA_TEST_MONGODB_URL": "mongodb://x"}) == Settings()
