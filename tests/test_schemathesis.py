"""Property-based fuzzing of every documented operation (schemathesis, a bounded number of
examples per operation): with data the document allows (positive) the answers are what the
document says (status, content type, schema); with data it forbids (negative: wrong types,
missing required values, values out of range) the server says 4xx. Never a 5xx."""

from __future__ import annotations

import os
import re
from collections import Counter
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
# an interaction that runs one handler for every resource type (read, search, update, patch,
# history, $validate...) gets a quarter as many for each type: 23 types x 2 cases of each kind
# reach its handler in a run, more than an operation of a route of its own gets (8). Hypothesis
# draws new cases each run, so the runs do not repeat one another
PER_TYPE_EXAMPLES = max(1, EXAMPLES // 4)
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


_TYPE_SEGMENT = re.compile(r"^/fhir/[A-Z][A-Za-z]+")


def _route(method: str, path: str) -> tuple[str, str]:
    """The operation's route, whatever the resource type."""
    return method.lower(), _TYPE_SEGMENT.sub("/fhir/{type}", path)


_ROUTES = Counter(_route(method, path) for path, item in schema.raw_schema["paths"].items()
                  for method in item)  # fmt: skip


def _per_type(context: Any) -> bool:
    """An operation whose route exists for several resource types."""
    return _ROUTES[_route(context.operation.method, context.operation.path)] > 1


def _fuzzing(fuzzed: Any, examples: int, checks: list[Any]) -> Any:
    @fuzzed.parametrize()
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    def test(case: Any) -> None:
        case.call_and_validate(headers=AUTH, checks=checks)

    return test


test_answers_are_as_documented = _fuzzing(schema.exclude(func=_per_type), EXAMPLES, CONFORMS)
test_answers_are_as_documented_for_each_type = _fuzzing(
    schema.include(func=_per_type), PER_TYPE_EXAMPLES, CONFORMS
)
test_wrong_requests_get_no_server_error = _fuzzing(
    negative.exclude(func=_per_type), EXAMPLES, [not_a_server_error]
)
test_wrong_requests_get_no_server_error_for_each_type = _fuzzing(
    negative.include(func=_per_type), PER_TYPE_EXAMPLES, [not_a_server_error]
)
