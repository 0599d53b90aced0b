"""The SQLite planner picks the smallest index range, and every plan gives the same answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from server.fhir import FhirService
from server.fhir.search import parse
from server.site import build_service
from server.store.sqlite import SqliteStore
from server.store.sqlite_plan import CountCache, plan

DCM = "http://dicom.nema.org/resources/ontology/DCM"
START = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[SqliteStore, FhirService]:
    return _load(Path(tmp_path_factory.mktemp("plan")))


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> tuple[SqliteStore, FhirService]:
    """The same with SQLite's statistics (ANALYZE), which change the plans SQLite picks."""
    store, service = _load(Path(tmp_path_factory.mktemp("analysed")))
    store._conn().execute("ANALYZE")
    return store, service


def _load(folder: Path) -> tuple[SqliteStore, FhirService]:
    """2,400 Observations, one every 6 hours over 600 days; every tenth is a study summary."""
    store = SqliteStore(folder / "k.sqlite3")
    service = build_service(store)
    with store.transaction() as tx:
        for i in range(2400):
            code = "113701" if i % 10 == 0 else "113852"
            when = (START + timedelta(hours=6 * i)).isoformat()
            body = {
                "resourceType": "Observation",
                "id": f"o{i}",
                "status": "final",
                "code": {"coding": [{"system": DCM, "code": code}]},
                "subject": {"reference": f"Patient/p{i % 40}"},
                "effectiveDateTime": when,
            }
            service.update_in(tx, "Observation", f"o{i}", body, trusted=True)
        for i in range(10):  # no effective date: never in a date range, but found by code
            body = {
                "resourceType": "Observation",
                "id": f"undated{i}",
                "status": "final",
                "code": {"coding": [{"system": DCM, "code": "113701"}]},
            }
            service.update_in(tx, "Observation", f"undated{i}", body, trusted=True)
    return store, service


def _expected(code: str, low: datetime, high: datetime, patient: str | None = None) -> list[str]:
    found = []
    for i in range(2400):
        when = START + timedelta(hours=6 * i)
        is_code = ("113701" if i % 10 == 0 else "113852") == code
        if is_code and low <= when < high and (patient is None or f"p{i % 40}" == patient):
            found.append(f"o{i}")
    return sorted(found, key=lambda rid: int(rid[1:]))


def _plan_for(store: SqliteStore, pairs: list[tuple[str, str]]) -> frozenset[int]:
    query = parse("Observation", pairs).query
    compiler = store._compiler()
    parts = [compiler.part("Observation", c) for c in query.clauses]
    return plan(store._conn(), compiler, query, parts, CountCache()).covers


def test_month_drives_a_common_code(loaded: tuple[SqliteStore, FhirService]) -> None:
    store, service = loaded
    pairs = [
        ("code", f"{DCM}|113852"),
        ("date", "ge2024-03-01"),
        ("date", "lt2024-04-01"),
        ("_count", "1000"),
    ]
    assert _plan_for(store, pairs) == frozenset({0, 1, 2})  # code and month: one token range
    result = service.search("Observation", pairs)
    expected = _expected(
        "113852", datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC)
    )
    assert result.total == len(expected) == 111
    assert sorted((s.rid for s in result.matches), key=lambda rid: int(rid[1:])) == expected


def test_patient_drives_when_it_is_the_smallest(loaded: tuple[SqliteStore, FhirService]) -> None:
    store, service = loaded
    pairs = [
        ("code", "113852"),
        ("patient", "p3"),
        ("date", "ge2024-01-01"),
        ("date", "lt2025-01-01"),
    ]
    assert _plan_for(store, pairs) == frozenset({1})
    expected = _expected(
        "113852", datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC), "p3"
    )
    assert sorted(s.rid for s in service.search("Observation", pairs).matches) == sorted(expected)


def test_rare_code_drives_a_long_period(loaded: tuple[SqliteStore, FhirService]) -> None:
    store, service = loaded
    pairs = [("code", f"{DCM}|113701"), ("date", "ge2024-01-01"), ("_count", "500")]
    assert _plan_for(store, pairs) == frozenset({0, 1})
    assert service.search("Observation", pairs).total == 240
    assert service.search("Observation", [("code", "113701"), ("date", "lt2030")]).total == 240
    assert service.search("Observation", [("code", "113701")]).total == 250


@pytest.mark.parametrize(
    "pairs",
    [
        [("code", f"{DCM}|")],  # a system alone, as the notifier polls Communications
        [("code", "http://never.stored|")],
        [("subject:missing", "false")],
    ],
)
def test_a_param_wide_driver_reads_its_range_not_every_index_row(
    analysed: tuple[SqliteStore, FhirService], pairs: list[tuple[str, str]]
) -> None:
    """DISTINCT over such a driver let SQLite walk the whole by-pk index in pk order (every row
    of every param; 160 ms at 2.5 M token rows, twice a second from the notifier's poll)."""
    store, service = analysed
    conn = store._conn()
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        result = service.search("Observation", [*pairs, ("_count", "5")])
    finally:
        conn.set_trace_callback(None)
    plans = [
        str(conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall())
        for sql in statements
        if "DISTINCT" in sql
    ]
    assert plans and not any("_by_pk" in p and "SCAN" in p for p in plans), plans
    assert len(result.matches) == (0 if "never" in pairs[0][1] else 5)
