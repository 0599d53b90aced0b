"""Property-based fuzzing of every documented operation (schemathesis, a bounded number of
examples per operation): with data the document allows (positive) the answers are what the
document says (status, content type, schema); with data it forbids (negative: wrong types,
missing required values, values out of range) the server says 4xx. Never a 5xx."""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from server.app import create_app
from server.auth.users import add_user
from server.config import Settings
from server.store.sqlite import SqliteStore
from tests.conftest import collection_folder

EXAMPLES = int(os.environ.get("KERMA_TEST_FUZZ_EXAMPLES", "8"))
# schemathesis's coverage phase (every boundary, missing and wrong value the document defines,
# and each undocumented method) is 60 % of this file's run and 75 % of its collection, which
# every test process repeats: run after changing the API (docs/development.md), not each time
PHASES = ["examples", "fuzzing"] + (
    ["coverage"] if os.environ.get("KERMA_TEST_FUZZ_COVERAGE") else []
)

# schemathesis needs the app when the module is collected, before fixtures exist (its
# from_fixture fails under pytest 9); the folder goes when the test process ends, run or not
_DIR = collection_folder("kerma-fuzz-")
_STORE = SqliteStore(_DIR / "kerma.sqlite3")
_TOKEN = add_user(_STORE, "fuzzer", "admin")
_APP = create_app(Settings(data_dir=_DIR), _STORE)
schema = schemathesis.openapi.from_wsgi("/openapi.json", _APP)
negative = schemathesis.openapi.from_wsgi("/openapi.json", _APP)
negative.config.generation.update(modes=[GenerationMode.NEGATIVE])
for fuzzed in (schema, negative):
    fuzzed.config.phases.update(phases=PHASES)
AUTH = {"Authorization": f"Bearer {_TOKEN}"}
CONFORMS = [not_a_server_error, status_code_conformance, content_type_conformance,
            response_schema_conformance]  # fmt: skip


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_answers_are_as_documented(case: Any) -> None:
    case.call_and_validate(headers=AUTH, checks=CONFORMS)


@negative.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_wrong_requests_get_no_server_error(case: Any) -> None:
    case.call_and_validate(headers=AUTH, checks=[not_a_server_error])
