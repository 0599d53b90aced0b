"""Pipeline rules with real files: RDSR over image headers, CT image series (I7), quarantine."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import orjson
import pydicom
import pytest

from server.config import Settings
from server.fhir import FhirService
from server.ingest import Ingestor, build_ingestor
from server.site import build_service
from server.store.sqlite import SqliteStore

CORPUS = Path(__file__).parent.parent / "data" / "dicom"


@pytest.fixture
def world(tmp_path: Path) -> tuple[Ingestor, FhirService, Settings]:
    settings = Settings(data_dir=tmp_path)
    store = SqliteStore(settings.sqlite_path)
    return build_ingestor(store, settings), build_service(store), settings


def _bytes(ds: pydicom.Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _summary(service: FhirService) -> dict[str, Any]:
    result = service.search("Observation", [("code", "73569-6")])
    assert result.total == 1
    return orjson.loads(result.matches[0].body or b"")


def _value(resource: dict[str, Any], code: str) -> float | None:
    for c in resource.get("component", []):
        if c["code"]["coding"][0]["code"] == code and "valueQuantity" in c:
            return float(c["valueQuantity"]["value"])
    return None


def test_an_rdsr_supersedes_image_headers_of_its_study(
    world: tuple[Ingestor, FhirService, Settings],
) -> None:
    ingestor, service, _ = world
    rdsr = pydicom.dcmread(CORPUS / "openrem/DX-RDSR-Canon_CXDI.dcm")
    image = pydicom.dcmread(CORPUS / "openrem/DX-Im-GE_XR220-1.dcm")
    image.StudyInstanceUID = rdsr.StudyInstanceUID  # the same study, images arriving first
    assert ingestor.ingest_bytes(_bytes(image), "image.dcm").status == "ingested"
    header_summary = _summary(service)
    assert header_summary["meta"]["tag"][0]["code"] == "image-header"
    assert _value(header_summary, "113722") == pytest.approx(41.0)  # 0.41 dGy.cm2 = 41 mGy.cm2

    assert ingestor.ingest_bytes(_bytes(rdsr), "rdsr.dcm").status == "ingested"
    summary = _summary(service)
    assert summary["meta"]["tag"][0]["code"] == "rdsr"
    assert _value(summary, "113722") == pytest.approx(107.0)  # the RDSR's 1.07e-05 Gy.m2 alone
    events = service.search("Observation", [("code", "113852")])
    assert events.total == 1  # the header event is gone
    provenance = service.search("Provenance", [("_sort", "-recorded")]).matches
    removed = [
        e
        for p in provenance
        for e in orjson.loads(p.body or b"")["entity"]
        if e["role"] == "removal"
    ]
    assert len(removed) == 1

    later_image = pydicom.dcmread(CORPUS / "openrem/DX-Im-GE_XR220-2.dcm")
    later_image.StudyInstanceUID = rdsr.StudyInstanceUID
    later = ingestor.ingest_bytes(_bytes(later_image), "later.dcm")
    assert later.status == "skipped" and "RDSR" in (later.reason or "")


def test_ct_images_add_one_event_per_acquisition(
    world: tuple[Ingestor, FhirService, Settings],
) -> None:
    """I7: reconstructions and derived images of a series never add exposures."""
    ingestor, service, _ = world
    original = pydicom.dcmread(CORPUS / "other/fo-dicom/IM-0001-0001-0001.dcm")
    assert ingestor.ingest_bytes(_bytes(original), "ct-1.dcm").status == "ingested"
    x, y, z = (float(v) for v in original.ImagePositionPatient)
    same_series = original.copy()
    same_series.SOPInstanceUID = pydicom.uid.generate_uid()
    same_series.ImagePositionPatient = [x, y, z - 250.0]  # the last slice of the scan
    assert ingestor.ingest_bytes(_bytes(same_series), "ct-2.dcm").status == "ingested"
    reconstruction = original.copy()
    reconstruction.SOPInstanceUID = pydicom.uid.generate_uid()
    reconstruction.SeriesInstanceUID = pydicom.uid.generate_uid()
    reconstruction.ImageType = ["DERIVED", "SECONDARY", "MPR"]
    skipped = ingestor.ingest_bytes(_bytes(reconstruction), "mpr.dcm")
    assert skipped.status == "skipped" and "I7" in (skipped.reason or "")
    events = service.search("Observation", [("code", "113852")])
    assert events.total == 1
    event = orjson.loads(events.matches[0].body or b"")
    assert (_value(event, "113897"), _value(event, "113898")) == (
        z,
        z - 250.0,
    )  # the scan range grew
    assert _value(event, "113825") == 250.0
    summary = _summary(service)
    assert _value(summary, "113830") == pytest.approx(float(original.CTDIvol))
    assert len(summary["identifier"]) == 2  # both images are known, so neither is read twice


def test_unreadable_bytes_go_to_quarantine_with_their_reason(
    world: tuple[Ingestor, FhirService, Settings],
) -> None:
    ingestor, _, settings = world
    truncated = (CORPUS / "openrem/CT-RDSR-Siemens_Flash-TAP-SS.dcm").read_bytes()[:900]
    result = ingestor.ingest_bytes(truncated, "truncated.dcm")
    assert result.status == "quarantined"
    kept = list(settings.quarantine_dir.glob("*.dcm"))
    assert len(kept) == 1 and kept[0].read_bytes() == truncated
    meta = orjson.loads(kept[0].with_suffix(".json").read_bytes())
    assert meta["name"] == "truncated.dcm" and meta["reason"] == result.reason


@pytest.mark.parametrize(
    "name",
    ["NM-PetIm-GE.dcm", "NM-RRDSR-Siemens.dcm", "ESR_non-dose.dcm"],
)
def test_objects_without_xray_dose_are_skipped_with_a_reason(
    world: tuple[Ingestor, FhirService, Settings], name: str
) -> None:
    ingestor, service, _ = world
    result = ingestor.ingest_file(CORPUS / "openrem" / name)
    assert result.status == "skipped" and result.reason
    assert service.search("ImagingStudy", []).total == 0


def test_plausibility_findings_are_kept_and_searchable(
    world: tuple[Ingestor, FhirService, Settings],
) -> None:
    """I9: this Philips RDSR declares a DAP total its events do not add up to."""
    ingestor, service, _ = world
    assert (
        ingestor.ingest_file(CORPUS / "other/PySkinDose/philips_allura_clarity_u104.dcm").status
        == "ingested"
    )
    assert ingestor.ingest_file(CORPUS / "openrem/RF-RDSR-Siemens-Zee.dcm").status == "ingested"
    flagged = service.search(
        "Observation",
        [("_tag", "https://kerma.example.org/fhir/CodeSystem/dose-quality|plausibility-warning")],
    )
    assert flagged.total == 1
    note = orjson.loads(flagged.matches[0].body or b"")["note"][0]["text"]
    assert "inconsistent-total" in note and "7.83913e-06 Gy.m2" in note and "6.59055e-06" in note


def test_proprietary_siemens_summary_becomes_accumulated_dose(
    world: tuple[Ingestor, FhirService, Settings],
) -> None:
    """ARCADIS Varic: DAP 0.2359 Gy.cm2 (the file's unit), fluoro time 34.427 s, no events."""
    ingestor, service, _ = world
    assert ingestor.ingest_file(CORPUS / "openrem/RF-ESR-Siemens-Varic.dcm").status == "ingested"
    summary = _summary(service)
    assert _value(summary, "113722") == pytest.approx(235.9)  # mGy.cm2
    assert _value(summary, "113726") == pytest.approx(235.9)
    assert _value(summary, "113730") == pytest.approx(34.427)
    assert service.search("Observation", [("code", "113852")]).total == 0


def test_philips_source_to_detector_distance_holds_until_it_changes() -> None:
    from server.dicom.read import Read, read_dicom
    from server.mappings import unit_table

    outcome = read_dicom(CORPUS / "other/PySkinDose/philips_allura_clarity_u104.dcm", unit_table())
    assert isinstance(outcome, Read)
    seen: dict[str, bool] = {}
    written = 0
    for event in outcome.report.projection_events:
        plane = event.plane.value if event.plane else ""
        if seen.get(plane):
            assert event.source_to_detector_mm is not None  # carried from an earlier event
        if event.source_to_detector_mm is not None:
            seen[plane] = True
            written += 1
    assert written == 8  # 3 in the file, 5 carried


def test_ct_dose_check_details_are_kept(world: tuple[Ingestor, FhirService, Settings]) -> None:
    """TID 10015: the Toshiba scanner's CTDIvol alert value (1000 mGy) on its third acquisition."""
    ingestor, service, _ = world
    assert (
        ingestor.ingest_file(CORPUS / "openrem/CT-RDSR-Toshiba_MultiValSD.dcm").status == "ingested"
    )
    found = service.search(
        "Observation",
        [("component-code-value-quantity", "113904$1000|http://unitsofmeasure.org|mGy")],
    )
    assert found.total == 1
    event = orjson.loads(found.matches[0].body or b"")
    assert event["method"]["text"] == "100sec Neck & Chest +C (vHP)"


def test_biplane_totals_per_plane_and_dap_summed(
    world: tuple[Ingestor, FhirService, Settings],
) -> None:
    """Philips Allura biplane: Plane A and B totals apart; DAP summed, Dose (RP) never."""
    ingestor, service, settings = world
    assert (
        ingestor.ingest_file(CORPUS / "other/PySkinDose/philips_allura_clarity_u104.dcm").status
        == "ingested"
    )
    summary = _summary(service)
    daps = [
        (c["code"]["coding"][0]["display"], c["valueQuantity"]["value"])
        for c in summary["component"]
        if c["code"]["coding"][0]["code"] == "113722"
    ]
    assert daps[0] == ("Dose Area Product Total", pytest.approx(78.391324289))
    assert {d for d, _ in daps[1:]} == {
        "Dose Area Product Total (Plane A)",
        "Dose Area Product Total (Plane B)",
    }
    rp = [
        c["code"]["coding"][0]["display"]
        for c in summary["component"]
        if c["code"]["coding"][0]["code"] == "113725"
    ]
    assert rp == ["Dose (RP) Total (Plane A)", "Dose (RP) Total (Plane B)"]
    (study_row,) = [f for f in SqliteStore(settings.sqlite_path).facts() if f.level == "study"]
    assert study_row.dap_gy_m2 == pytest.approx(7.8391324289e-06)
