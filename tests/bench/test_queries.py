"""FHIR search, GraphQL, the studies page and classification (bench/fhir_search.py,
graphql_studies.py, studies_page.py, classification.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.bench.run import BENCH, run


def test_fhir_search_bench_runs(tmp_path: Path) -> None:
    out = run(
        "fhir_search.py",
        *("--observations", "400", "--patients", "20", "--queries", "5"),
        *("--transactions", "2", "--dir", str(tmp_path)),
    )
    assert "(a) Observation?patient=X" in out
    assert "resources/s" in out


def test_generated_resources_are_valid_fhir() -> None:
    """The bench loads generated resources as trusted; this is where they are validated."""
    sys.path.insert(0, str(BENCH))
    import dose_data

    from server.fhir.validation import validate

    resources = [dose_data.patient(1), dose_data.device(1), *dose_data.observations(5, 8)]
    assert {r["resourceType"] for r in resources} == {"Patient", "Device", "Observation"}
    for resource in resources:
        assert validate(resource) == [], resource["id"]


def test_graphql_bench_runs(tmp_path: Path) -> None:
    out = run("graphql_studies.py", "--studies", "30", "--page", "20", "--repeats", "2",
               "--dir", str(tmp_path))  # fmt: skip
    assert "store queries per GraphQL query: {'search': 3}" in out
    assert "graphql  median" in out and "rest     median" in out


def test_studies_page_bench_runs(tmp_path: Path) -> None:
    out = run("studies_page.py", "--studies", "300", "--repeats", "2", "--dir", str(tmp_path))
    assert "300 studies" in out and "open alerts" in out and "every page" in out
    assert "15 matches" in out  # the open alerts: one study in 20


def test_classification_bench_forces_no_name_wrong() -> None:
    """The shipped rules on the 353 names: at least 90 % correct, none forced wrong (issue 20's
    bar; a rule change that breaks a name fails here)."""
    out = run("classification.py")
    [row] = [line.split() for line in out.splitlines() if line.startswith("all ")]
    assert int(row[1]) >= 300 and float(row[2].rstrip("%")) >= 90.0
    assert row[-1] == "0.0%" and "wrong (0):" in out
