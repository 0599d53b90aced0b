"""The whole corpus through the ingest pipeline: outcomes, validity of what is stored, idempotency."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from server.config import Settings
from server.fhir.validation import validate
from server.ingest import build_ingestor
from server.site import build_service
from server.store.sqlite import SqliteStore

CORPUS = Path(__file__).parent.parent / "data" / "dicom"
FILES = sorted(CORPUS.rglob("*.dcm"))


@pytest.fixture(scope="module")
def ingested(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[SqliteStore, Settings, dict[str, str]]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("corpus"))
    store = SqliteStore(settings.sqlite_path)
    ingestor = build_ingestor(store, settings)
    statuses = {path.name: ingestor.ingest_file(path).status for path in FILES}
    return store, settings, statuses


def test_every_file_gets_an_outcome(ingested: tuple[SqliteStore, Settings, dict[str, str]]) -> None:
    _, _, statuses = ingested
    assert set(statuses.values()) <= {"ingested", "skipped", "quarantined", "duplicate"}
    ct = [name for name in statuses if name.startswith(("CT-RDSR", "CT-ESR", "NM-CT-RDSR"))]
    assert ct and all(statuses[name] in ("ingested", "duplicate") for name in ct)
    for name in (
        "NM-PetIm-GE.dcm",
        "NM-NmIm-Siemens.dcm",
        "NM-RRDSR-Siemens.dcm",
        "ESR_non-dose.dcm",
    ):
        assert statuses[name] == "skipped", name


def test_every_stored_resource_is_valid_fhir(
    ingested: tuple[SqliteStore, Settings, dict[str, str]],
) -> None:
    """Ingestion stores its own resources without validating them each time; here they all are."""
    store, _, _ = ingested
    service = build_service(store)
    checked = 0
    for rtype in ("Patient", "Device", "ImagingStudy", "Observation", "Provenance"):
        result = service.search(rtype, [("_count", "1000")])
        for stored in result.matches:
            resource = orjson.loads(stored.body or b"{}")
            assert validate(resource) == [], (rtype, stored.rid, validate(resource))
            checked += 1
    assert checked > 50


def test_ingesting_again_changes_nothing(
    ingested: tuple[SqliteStore, Settings, dict[str, str]],
) -> None:
    store, settings, statuses = ingested
    before, total = store.history(None, None, None, 1, 0)
    again = build_ingestor(store, settings)
    for path in FILES:
        if statuses[path.name] == "ingested":
            assert again.ingest_file(path).status == "duplicate", path.name
    after, total_after = store.history(None, None, None, 1, 0)
    assert total_after == total and after == before
