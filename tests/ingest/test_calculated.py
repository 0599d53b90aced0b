"""Effective dose (H4) and peak skin dose with its map (H8) calculated at ingest: its own Observation derived from the dose summary,
with method, inputs, version and uncertainty, a Provenance naming the algorithm; the summary
untouched; nothing calculated where the device reported E or the procedure has no k-factor."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from server.config import Settings
from server.dicom.read import Read, read_dicom
from server.fhir import FhirService, build_service, calculated
from server.fhir.validation import validate
from server.ingest import build_ingestor
from server.mappings import unit_table
from server.store.port import Store

CORPUS = Path(__file__).parent.parent / "data" / "dicom" / "openrem"
FLASH = CORPUS / "CT-RDSR-Siemens_Flash-TAP-SS.dcm"
CALCULATED = "https://kerma.example.org/fhir/NamingSystem/calculated"


def _calculated(service: FhirService) -> list[dict[str, Any]]:
    """The Observations Kerma calculated (event Observations may carry a reported E too)."""
    found = [
        orjson.loads(s.body or b"")
        for s in service.search("Observation", [("code", "113839")]).matches
    ]
    return [o for o in found if o["identifier"][0]["system"] == CALCULATED]


def _component(resource: dict[str, Any], code: str) -> float:
    return next(c["valueQuantity"]["value"] for c in resource["component"]
                if c["code"]["coding"][0]["code"] == code)  # fmt: skip


def test_effective_dose_of_the_siemens_flash(store: Store, settings: Settings) -> None:
    service = build_service(store)
    assert build_ingestor(store, settings).ingest_file(FLASH).status == "ingested"
    [estimate] = _calculated(service)
    # CT Chest/Abdomen/Pelvis, 67 years (adult), 120 kV: k = 0.0180 mSv/(mGy.cm), ICRP 103
    assert estimate["valueQuantity"] == {"value": pytest.approx(724.52 * 0.0180, abs=1e-3),
                                         "unit": "mSv", "system": "http://unitsofmeasure.org", "code": "mSv"}  # fmt: skip
    assert _component(estimate, "113813") == pytest.approx(724.52)
    assert _component(estimate, "k-factor") == 0.0180
    assert (_component(estimate, "age-used"), _component(estimate, "113733")) == (30.0, 120.0)
    assert _component(estimate, "spread") == pytest.approx((0.0180 - 0.0162) / 0.0180)
    assert "not the dose or the risk of this patient" in estimate["note"][0]["text"]
    assert (
        estimate["method"]["coding"][0]["display"]
        == "DLP x k (nci-lee-2012, chest_abdomen_pelvis, ICRP 103)"
    )
    assert validate(estimate) == []
    [summary] = service.search("Observation", [("code", "73569-6")]).matches
    assert estimate["derivedFrom"] == [{"reference": f"Observation/{summary.rid}"}]
    summary_body = orjson.loads(summary.body or b"")
    assert "113839" not in str(summary_body["component"])  # never on the main summary
    provenances = [
        orjson.loads(p.body or b"")
        for p in service.search("Provenance", [("_count", "100")]).matches
    ]
    [made] = [p for p in provenances if {"reference": f"Observation/{estimate['id']}"} in p["target"]
              and p["activity"]["text"] == "calculated"]  # fmt: skip
    assert (
        made["agent"][0]["who"]["display"]
        == "Kerma kerma-effective-dose-1 (k-factors nci-lee-2012, ICRP 103)"
    )
    assert made["entity"] == [
        {"role": "source", "what": {"reference": f"Observation/{summary.rid}"}}
    ]


def test_a_reported_effective_dose_wins(store: Store, settings: Settings) -> None:
    outcome = read_dicom(FLASH, unit_table())
    assert isinstance(outcome, Read) and outcome.report.ct_totals is not None
    report = outcome.report
    reported = replace(report, ct_totals=replace(report.ct_totals, effective_dose_total_msv=11.0))
    assert build_ingestor(store, settings).store_report(reported, FLASH.name).status == "ingested"
    assert _calculated(build_service(store)) == []


def _skin_dose(service: FhirService) -> list[dict[str, Any]]:
    found = service.search("Observation", [("code", "peak-skin-dose")]).matches
    return [orjson.loads(s.body or b"") for s in found]


def test_peak_skin_dose_and_map_of_the_siemens_zee(store: Store, settings: Settings) -> None:
    """The Zee's eight events: the peak skin dose (openSkin: 1.717 mGy) as its own
    Observation with the map, the inputs and their sources, and a Provenance."""
    service = build_service(store)
    ingestor = build_ingestor(store, settings)
    assert ingestor.ingest_file(CORPUS / "RF-RDSR-Siemens-Zee.dcm").status == "ingested"
    [peak] = _skin_dose(service)
    assert validate(peak) == []
    assert peak["valueQuantity"]["unit"] == "Gy"
    assert peak["valueQuantity"]["value"] == pytest.approx(0.001717, rel=0.03)
    assert peak["identifier"][0]["value"].startswith("skin-dose:")
    assert _component(peak, "8302-2") == 178.6  # no height in the RDSR: the reference person
    assert any("assumed" in c["code"]["coding"][0]["display"] for c in peak["component"])
    assert (_component(peak, "events-mapped"), _component(peak, "events-skipped")) == (8, 0)
    assert _component(peak, "113725") == pytest.approx(0.00249)
    assert _component(peak, "uncertainty") == 0.35
    assert _component(peak, "area-2-gy") == 0.0
    grid = calculated.skin_dose_grid(peak)
    assert grid is not None and grid.shape == (94, 90)
    assert np.nanmax(grid) == pytest.approx(peak["valueQuantity"]["value"], abs=1e-6)
    assert np.isnan(grid[0, 80]) and grid[65, 52] > 0  # beyond the head's 58 cells; the back
    [summary] = service.search("Observation", [("code", "73569-6")]).matches
    assert peak["derivedFrom"] == [{"reference": f"Observation/{summary.rid}"}]
    made = [
        orjson.loads(p.body or b"")
        for p in service.search("Provenance", [("_count", "100")]).matches
    ]
    [agent] = [p["agent"][0]["who"]["display"] for p in made
               if p["target"] == [{"reference": f"Observation/{peak['id']}"}]]  # fmt: skip
    assert agent.startswith("Kerma kerma-skin-dose-1")
    # the same object again changes nothing; a radiograph (no C-arm geometry) gets no map
    assert ingestor.ingest_file(CORPUS / "RF-RDSR-Siemens-Zee.dcm").status == "duplicate"
    assert ingestor.ingest_file(CORPUS / "DX-RDSR-Canon_CXDI.dcm").status == "ingested"
    assert len(_skin_dose(service)) == 1
