"""Effective dose (H4) and peak skin dose with its map (H8) calculated at ingest: its own Observation derived from the dose summary,
with method, inputs, version and uncertainty, a Provenance naming the algorithm; the summary
untouched; nothing calculated where the device reported E or the procedure has no k-factor."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from server.calculated import observations as calculated
from server.config import Settings
from server.dicom.read import Read, read_dicom
from server.fhir import FhirService
from server.fhir.acquisitions import acquisition_doses
from server.fhir.mapping import CLASSIFICATION_URL
from server.fhir.validation import validate
from server.ingest import build_ingestor
from server.ingest.hl7 import build_handler
from server.mappings import unit_table
from server.site import build_service
from server.store.port import Store
from tests.hl7.conftest import err, message, msa, msh

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
    assert agent.startswith("Kerma kerma-skin-dose-2")
    # the same object again changes nothing; a radiograph (no C-arm geometry) gets no map
    assert ingestor.ingest_file(CORPUS / "RF-RDSR-Siemens-Zee.dcm").status == "duplicate"
    assert ingestor.ingest_file(CORPUS / "DX-RDSR-Canon_CXDI.dcm").status == "ingested"
    assert len(_skin_dose(service)) == 1


def test_ssde_of_each_ct_acquisition(store: Store, settings: Settings) -> None:
    """The Flash as a 6-year-old's examination: SSDE (AAPM 204, 32 cm phantom) from the
    average effective diameter of a 6-year-old (19.0 cm), from the water-equivalent diameter
    or the lateral and AP dimensions where the RDSR has them, and none where the device
    reported its own SSDE."""
    outcome = read_dicom(FLASH, unit_table())
    assert isinstance(outcome, Read)
    report = outcome.report
    e0, e1, e2, e3 = report.ct_events
    child = replace(
        report,
        patient=replace(report.patient, age_years=6.0),
        ct_events=(replace(e0, lateral_dimension_mm=240.0, ap_dimension_mm=150.0), e1,
                   replace(e2, water_equivalent_diameter_mm=250.0), replace(e3, ssde_mgy=7.5)),
    )  # fmt: skip
    assert build_ingestor(store, settings).store_report(child, FLASH.name).status == "ingested"
    service = build_service(store)
    found = [
        orjson.loads(s.body or b"")
        for s in service.search("Observation", [("code", "113930")]).matches
    ]
    estimates = {o["identifier"][0]["value"]: o for o in found
                 if o["identifier"][0]["system"] == CALCULATED}  # fmt: skip
    assert set(estimates) == {f"ssde:{e.event_uid}" for e in (e0, e1, e2)}

    def f(diameter_cm: float) -> float:
        return 3.704369 * math.exp(-0.03671937 * diameter_cm)

    by_age = estimates[f"ssde:{e1.event_uid}"]
    assert validate(by_age) == []
    assert by_age["valueQuantity"]["value"] == pytest.approx(1.2 * f(19.0), abs=1e-3)
    assert by_age["valueQuantity"]["unit"] == "mGy"
    assert by_age["method"]["coding"][0]["code"] == "113937"  # CID 10023: from the age
    assert (_component(by_age, "113933"), _component(by_age, "age-used")) == (190.0, 6.0)
    assert _component(by_age, "conversion-factor") == pytest.approx(f(19.0), abs=1e-4)
    assert _component(by_age, "uncertainty-per-cm") == pytest.approx(0.03672, abs=1e-5)
    assert "not this child's" in by_age["note"][0]["text"]
    [event] = service.search(
        "Observation", [("identifier", f"urn:dicom:uid|urn:oid:{e1.event_uid}")]
    ).matches
    assert by_age["derivedFrom"] == [{"reference": f"Observation/{event.rid}"}]
    by_dimensions = estimates[f"ssde:{e0.event_uid}"]
    assert by_dimensions["method"]["coding"][0]["code"] == "aapm204-effective-diameter"
    assert _component(by_dimensions, "113933") == pytest.approx(189.7, abs=0.05)  # sqrt(24 x 15)
    assert by_dimensions["valueQuantity"]["value"] == pytest.approx(
        0.14 * f(math.sqrt(360)), abs=1e-3
    )
    assert validate(by_dimensions) == []
    by_dw = estimates[f"ssde:{e2.event_uid}"]
    assert by_dw["valueQuantity"]["value"] == pytest.approx(3.61 * f(25.0), abs=1e-3)
    assert by_dw["method"]["coding"][0]["code"] == "113988"
    assert _component(by_dw, "113980") == 250.0
    made = [
        orjson.loads(p.body or b"")
        for p in service.search("Provenance", [("_count", "100")]).matches
    ]
    agents = [p["agent"][0]["who"]["display"] for p in made
              if p["target"] == [{"reference": f"Observation/{by_dw['id']}"}]]  # fmt: skip
    assert agents == ["Kerma kerma-ssde-1 (AAPM 204 fit aapm204-fit-2011, 32 cm phantom)"]


def test_no_ssde_for_adults_without_a_measured_size(store: Store, settings: Settings) -> None:
    assert build_ingestor(store, settings).ingest_file(FLASH).status == "ingested"
    found = build_service(store).search("Observation", [("code", "113930")]).matches
    assert [s for s in found if CALCULATED in (s.body or b"").decode()] == []


def test_skin_dose_phantom_sized_from_the_his(store: Store, settings: Settings) -> None:
    """The Zee RDSR has no height or weight; the HIS sent them (ADT OBX) before the study, so
    the phantom is that patient's (a later measurement is not used)."""
    handler = build_handler(store, settings)
    for control, when, kg in (("W1", "20160510", "95"), ("W2", "20160601", "60")):
        answer = handler.handle(message(
            msh("ADT^A08^ADT_A01", control), "PID|||098765||Kurī^Ādam||19160512|O",
            f"OBX|1|NM|29463-7^Body weight^LN||{kg}|kg|||||F|||{when}",
            f"OBX|2|NM|8302-2^Body height^LN||165|cm|||||F|||{when}",
        ))  # fmt: skip
        assert msa(answer)[1] == "AA", err(answer)
    assert (
        build_ingestor(store, settings).ingest_file(CORPUS / "RF-RDSR-Siemens-Zee.dcm").status
        == "ingested"
    )
    [peak] = _skin_dose(build_service(store))
    assert (_component(peak, "8302-2"), _component(peak, "29463-7")) == (165.0, 95.0)
    assert not any(
        "assumed (reference" in c["code"]["coding"][0]["display"] for c in peak["component"]
    )
    # a larger, shorter patient: wider torso (more columns), shorter (fewer rows)
    grid = calculated.skin_dose_grid(peak)
    assert grid is not None and grid.shape[0] < 94 and grid.shape[1] > 90


def test_no_peak_skin_dose_where_the_table_reference_is_unknown(
    store: Store, settings: Settings
) -> None:
    """The Philips Azurion's beams miss the phantom with its table positions as reported: the
    Observation says why instead of a value (no map, no alert value)."""
    assert (
        build_ingestor(store, settings).ingest_file(CORPUS / "RF-RDSR-Philips_Azurion.dcm").status
        == "ingested"
    )
    [peak] = _skin_dose(build_service(store))
    assert validate(peak) == []
    assert "valueQuantity" not in peak and calculated.skin_dose_grid(peak) is None
    assert peak["dataAbsentReason"]["coding"][0]["code"] == "error"
    assert "miss the phantom" in peak["dataAbsentReason"]["text"]
    assert _component(peak, "dap-on-phantom") == 0.0
    assert (_component(peak, "8302-2"), _component(peak, "29463-7")) == (168.0, 73.0)  # the RDSR's


MULTI = [CORPUS / f"CT-RDSR-Siemens-Multi-{n}.dcm" for n in (1, 2, 3)]


def test_effective_dose_per_acquisition_without_a_standard_procedure(
    store: Store, settings: Settings
) -> None:
    """A radiotherapy planning 4DCT (the three RDSRs of one study, each holding the last's
    events): its procedure has no k-factor region, its two 4DCT acquisitions are chest
    (69.81 and 158.82 mGy.cm at 120 kV, 60 years: k = 0.0210 mSv/(mGy.cm)), the topogram
    (7.46 mGy.cm) is a localizer, of no region: E = (69.81 + 158.82) x 0.0210, said so."""
    service = build_service(store)
    ingestor = build_ingestor(store, settings)
    assert [ingestor.ingest_file(f).status for f in MULTI] == ["ingested"] * 3
    [estimate] = _calculated(service)
    assert estimate["valueQuantity"]["value"] == pytest.approx((69.81 + 158.82) * 0.0210, abs=1e-4)
    assert estimate["method"]["coding"][0] == {
        "system": calculated.METHODS, "code": "dlp-k-factor-per-acquisition",
        "display": "sum of DLP x k per acquisition (nci-lee-2012, chest, ICRP 103)"}  # fmt: skip
    assert (
        estimate["code"]["text"]
        == "Effective dose, calculated per acquisition (population estimate)"
    )
    assert _component(estimate, "113813") == pytest.approx(69.81 + 158.82)
    assert _component(estimate, "dlp-left-out") == 7.46
    assert _component(estimate, "dlp-region") == pytest.approx(228.63)
    assert (
        "The examination is ct-rt-planning, of no one region: E is the sum over its acquisitions"
        in estimate["note"][0]["text"]
    )
    assert validate(estimate) == []
    provenances = [
        orjson.loads(p.body or b"")
        for p in service.search("Provenance", [("_count", "100")]).matches
    ]
    made = [p for p in provenances if {"reference": f"Observation/{estimate['id']}"} in p["target"]
            and p["activity"]["text"] == "calculated"]  # fmt: skip
    assert len(made) == 2  # by the second RDSR (the first has only the topogram) and the third
    assert {p["agent"][0]["who"]["display"] for p in made} == {
        "Kerma kerma-effective-dose-1 per acquisition: the examination is ct-rt-planning, of no "
        "one region (k-factors nci-lee-2012, ICRP 103)"
    }


def _event(dlp: float, rule: str, code: str | None = None) -> dict[str, Any]:
    decision: list[dict[str, Any]] = [{"url": "rule", "valueString": rule}]
    if code:
        decision.append({"url": "procedure", "valueCoding": {"system": "s", "code": code}})
    return {
        "extension": [{"url": CLASSIFICATION_URL, "extension": decision}],
        "component": [{"code": {"coding": [{"code": "113838"}]},
                       "valueQuantity": {"value": dlp, "unit": "mGy.cm"}}],
    }  # fmt: skip


def test_no_effective_dose_per_acquisition_when_one_acquisition_is_unknown() -> None:
    regions = {"ct-acq-head": "head", "ct-acq-chest": "chest"}
    head, chest = _event(800.0, "ct-acq-head", "ct-acq-head"), _event(300.0, "x", "ct-acq-chest")
    scout = _event(5.0, "ct-localizer")
    assert acquisition_doses([scout, head, chest], regions) == (
        [(800.0, "head", None), (300.0, "chest", None)], 5.0)  # fmt: skip
    undecided = _event(200.0, "examination")  # no acquisition rule matched, no study procedure
    assert acquisition_doses([head, undecided], regions) is None
    no_region = _event(200.0, "dx-chest", "dx-chest-pa")  # a procedure without a k-factor
    assert acquisition_doses([head, no_region], regions) is None
