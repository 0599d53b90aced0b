"""Property-based fuzzing of every documented operation: whatever a client sends, the server
answers without a 5xx (schemathesis, a bounded number of examples per operation)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from server.app import create_app
from server.auth.users import add_user
from server.config import Settings
from server.store.sqlite import SqliteStore

EXAMPLES = int(os.environ.get("KERMA_TEST_FUZZ_EXAMPLES", "8"))

# schemathesis needs the app when the module is collected, before fixtures exist (its
# from_fixture fails under pytest 9); the folder goes when the process ends, run or not
_DIR = Path(tempfile.mkdtemp(prefix="kerma-fuzz-"))
atexit.register(shutil.rmtree, _DIR, ignore_errors=True)
_STORE = SqliteStore(_DIR / "kerma.sqlite3")
_TOKEN = add_user(_STORE, "fuzzer", "admin")
_APP = create_app(Settings(data_dir=_DIR), _STORE)
schema = schemathesis.openapi.from_wsgi("/openapi.json", _APP)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: Any) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {_TOKEN}"}, checks=[not_a_server_error]
    )
