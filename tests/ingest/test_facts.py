"""The dose-facts projection: written with each report, in each report's units, rebuildable."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import Settings
from server.dose.facts import DoseFact
from server.fhir.facts import rebuild
from server.ingest import build_ingestor
from server.mappings import unit_table
from server.site import build_service
from server.store.sqlite import SqliteStore

CORPUS = Path(__file__).parent.parent / "data" / "dicom" / "openrem"
FILES = (
    "CT-RDSR-Siemens_Flash-TAP-SS.dcm",
    "RF-RDSR-Siemens-Zee.dcm",
    "MG-RDSR-Hologic_2D.dcm",
    "DX-Im-GE_XR220-1.dcm",
    "DX-Im-GE_XR220-2.dcm",
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> SqliteStore:
    settings = Settings(data_dir=tmp_path_factory.mktemp("facts"))
    store = SqliteStore(settings.sqlite_path)
    ingestor = build_ingestor(store, settings)
    for name in FILES:
        assert ingestor.ingest_file(CORPUS / name).status == "ingested"
    return store


def _by_level(facts: list[DoseFact], modality: str) -> tuple[list[DoseFact], DoseFact]:
    rows = [f for f in facts if f.modality == modality]
    events = [f for f in rows if f.level == "event"]
    (study,) = [f for f in rows if f.level == "study"]
    return events, study


def test_ct_rows(store: SqliteStore) -> None:
    events, study = _by_level(store.facts(), "CT")
    assert sorted(e.ctdivol_mgy for e in events) == [0.14, 1.2, 3.61, 9.91]
    assert sorted(e.dlp_mgy_cm for e in events) == [1.2, 3.61, 11.51, 708.2]
    assert study.dlp_mgy_cm == 724.52 and study.events == 4
    assert study.ctdivol_mgy == 9.91  # the highest CTDIvol of the non-localizer acquisitions
    assert (
        study.weight_kg == 87.0 and study.size_m == 1.86 and round(study.age_years or 0, 1) == 67.6
    )
    assert {e.acquisition_type for e in events} == {
        "Constant Angle Acquisition",
        "Stationary Acquisition",
        "Spiral Acquisition",
    }
    assert study.device and all(e.device == study.device for e in events)


def test_projection_rows_in_the_model_units(store: SqliteStore) -> None:
    rf_events, rf = _by_level(store.facts(), "RF")
    assert rf.dap_gy_m2 == pytest.approx(1.6e-05) and rf.dose_rp_gy == pytest.approx(0.00252)
    assert rf.fluoro_time_s == 28.0 and len(rf_events) == 8
    _, mg = _by_level(store.facts(), "MG")
    assert (mg.agd_left_mgy, mg.agd_right_mgy, mg.agd_mgy) == (1.3, 1.28, pytest.approx(2.58))
    dx_events, dx = _by_level(store.facts(), "DX")
    assert sorted(e.dap_gy_m2 for e in dx_events) == [
        pytest.approx(4.1e-06),
        pytest.approx(8.2e-06),
    ]
    assert dx.dap_gy_m2 == pytest.approx(1.23e-05)
    assert sorted(e.exposure_index for e in dx_events) == [
        pytest.approx(51.745061),
        pytest.approx(108.84306),
    ]


def test_rebuild_gives_the_same_rows(store: SqliteStore) -> None:
    before = store.facts()
    with store.transaction() as tx:
        for study in {f.study_uid for f in before}:
            tx.replace_facts(study, [])
    assert store.facts() == []
    assert rebuild(build_service(store), unit_table()) == 4
    assert store.facts() == before
