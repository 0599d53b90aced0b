"""Dose screens read by Tesseract: rendered pages of real RDSR values (bench/dose_pages.py),
read back exactly, or flagged and kept out of the statistics when a check fails."""

from __future__ import annotations

import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from server.config import Settings
from server.dicom.read import Read, Skipped, read_dicom
from server.fhir import FhirService
from server.fhir.facts import rebuild
from server.fhir.mapping import OCR_CONFIDENCE_URL
from server.ingest import build_ingestor
from server.mappings import unit_table
from server.store.port import Store
from tests.dicom.conftest import CORPUS, summary_of

sys.path.insert(0, str(Path(__file__).parent.parent.parent / "bench"))
import dose_pages

pytestmark = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract-ocr is installed by scripts/setup"
)


def _exam(name: str) -> dose_pages.Exam:
    return next(e for e in dose_pages.exams() if e.name == name)


def _layout(vendor: str) -> dose_pages.Layout:
    return next(layout for layout in dose_pages.LAYOUTS if layout.vendor == vendor)


def _read(page: dose_pages.Page) -> Any:
    outcome = read_dicom(dose_pages.to_bytes(page.dataset), unit_table())
    assert isinstance(outcome, Read), outcome
    return outcome.report


def _values(report: Any) -> dict[str, float | None]:
    found: dict[str, float | None] = {"total_dlp": report.ct_totals.dlp_total_mgy_cm}
    for i, event in enumerate(report.ct_events):
        found[f"rows[{i}].ctdivol"] = event.ctdivol_mgy
        found[f"rows[{i}].dlp"] = event.dlp_mgy_cm
        if event.sources:
            found[f"rows[{i}].kvp"] = event.sources[0].kvp_kv
            found[f"rows[{i}].ma"] = event.sources[0].tube_current_ma
    return found


@pytest.mark.parametrize(
    ("vendor", "exam", "size"),
    [
        ("Siemens", "CT-RDSR-Siemens_Flash-QA-DS", 1024),
        ("GE", "CT-RDSR-Toshiba_MultiValSD", 512),
        ("Toshiba", "CT-RDSR-GEPixelMed", 512),
        ("Philips", "CT-RDSR-Siemens_Flash-TAP-SS", 1024),
    ],
)
def test_a_clean_page_is_read_back_exactly(vendor: str, exam: str, size: int) -> None:
    page = dose_pages.page(_exam(exam), _layout(vendor), size, "clean")
    report = _read(page)
    values = _values(report)
    assert {k: values.get(k) for k in page.truth} == page.truth
    assert report.source.kind == "ocr"
    assert len(report.ct_events) == len(page.exam.rows)


@pytest.mark.parametrize(
    ("vendor", "degradation"),
    [("GE", "low-contrast"), ("Toshiba", "jpeg"), ("Philips", "shifted"), ("Siemens", "jpeg")],
)
def test_on_a_degraded_page_every_value_is_right_or_flagged(vendor: str, degradation: str) -> None:
    page = dose_pages.page(_exam("CT-RDSR-Siemens_Flash-TAP-SS"), _layout(vendor), 512, degradation)
    report = _read(page)
    values = _values(report)
    wrong = [k for k, v in page.truth.items() if values.get(k) != v]
    flagged = {_truth_key(f.path) for f in report.findings}
    assert [k for k in wrong if k not in flagged] == []
    assert report.needs_review or not wrong


_TRUTH_NAMES = {
    "ctdivol_mgy": "ctdivol",
    "dlp_mgy_cm": "dlp",
    "kvp_kv": "kvp",
    "tube_current_ma": "ma",
}


def _truth_key(path: str) -> str:
    """A finding's path (ct_events[2].dlp_mgy_cm) as the page's truth names it (rows[2].dlp)."""
    if path.startswith("ct_totals."):
        return "total_dlp"
    index, _, name = path.removeprefix("ct_events[").partition("].")
    return f"rows[{index}].{_TRUTH_NAMES.get(name, name)}"


def test_a_total_that_does_not_add_up_is_flagged_and_kept_out_of_statistics(
    store: Store, service: FhirService, tmp_path: Path
) -> None:
    exam = _exam("CT-RDSR-Siemens_Flash-QA-DS")
    wrong = replace(exam, total_dlp=exam.total_dlp + 100.0)  # the page prints 1690.0
    page = dose_pages.page(wrong, _layout("Toshiba"), 1024, "clean")
    report = _read(page)
    assert "ocr-sum-mismatch" in {f.code for f in report.findings}
    assert report.needs_review

    ingestor = build_ingestor(store, Settings(data_dir=tmp_path))
    assert ingestor.ingest_bytes(dose_pages.to_bytes(page.dataset), "page.dcm").status == "ingested"
    summary = summary_of(service, exam.study_uid)
    assert summary["status"] == "preliminary"
    assert summary["meta"]["tag"][0]["code"] == "ocr"
    assert any("ocr-sum-mismatch" in n["text"] for n in summary["note"])
    assert store.facts(study_uid=exam.study_uid) == []

    # a reviewer confirms the values: the summary becomes final and joins the statistics
    service.update("Observation", summary["id"], {**summary, "status": "final"})
    rebuild(service, unit_table())
    assert len(store.facts(study_uid=exam.study_uid)) == 10


def test_a_clean_reading_is_stored_final_with_a_confidence_per_value(
    store: Store, service: FhirService, tmp_path: Path
) -> None:
    exam = _exam("CT-RDSR-Siemens_Flash-QA-DS")
    page = dose_pages.page(exam, _layout("Siemens"), 1024, "clean")
    ingestor = build_ingestor(store, Settings(data_dir=tmp_path))
    assert ingestor.ingest_bytes(dose_pages.to_bytes(page.dataset), "page.dcm").status == "ingested"
    summary = summary_of(service, exam.study_uid)
    assert summary["status"] == "final"
    total = next(c for c in summary["component"] if c["code"]["coding"][0]["code"] == "113813")
    assert total["valueQuantity"]["value"] == pytest.approx(1590.0)
    assert total["extension"][0]["url"] == OCR_CONFIDENCE_URL
    assert 0.8 <= total["extension"][0]["valueDecimal"] <= 1.0
    assert len(store.facts(study_uid=exam.study_uid)) == 10  # 9 events and the study

    # the RDSR of the same study arrives: it supersedes what was read off the screen
    rdsr = (CORPUS / "openrem" / "CT-RDSR-Siemens_Flash-QA-DS.dcm").read_bytes()
    assert ingestor.ingest_bytes(rdsr, "rdsr.dcm").status == "ingested"
    assert summary_of(service, exam.study_uid)["meta"]["tag"][0]["code"] == "rdsr"


def test_a_screen_of_an_unknown_layout_is_skipped_with_the_reason() -> None:
    exam = _exam("CT-RDSR-GEPixelMed")
    page = dose_pages.page(exam, replace(_layout("GE"), title="Exam Summary"), 512, "clean")
    page.dataset.Manufacturer = "ACME Imaging"
    outcome = read_dicom(dose_pages.to_bytes(page.dataset), unit_table())
    assert isinstance(outcome, Skipped)
    assert "unknown layout" in outcome.reason


def test_a_screen_stripped_of_its_pixels_is_skipped_not_quarantined() -> None:
    # fo-dicom's GH178 is a GE "Rapport dose" screen whose pixel data an anonymiser removed
    outcome = read_dicom(CORPUS / "other" / "fo-dicom" / "GH178.dcm", unit_table())
    assert isinstance(outcome, Skipped)
    assert "without pixel data" in outcome.reason


def test_stored_ocr_resources_are_valid_fhir(
    store: Store, service: FhirService, tmp_path: Path
) -> None:
    from server.fhir.validation import validate

    page = dose_pages.page(_exam("CT-RDSR-GEPixelMed"), _layout("GE"), 1024, "clean")
    build_ingestor(store, Settings(data_dir=tmp_path)).ingest_bytes(
        dose_pages.to_bytes(page.dataset), "page.dcm"
    )
    for stored in service.search("Observation", [("_count", "100")]).matches:
        resource = orjson.loads(stored.body or b"")
        assert validate(resource) == [], resource
