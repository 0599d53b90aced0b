"""DRL comparison on ingestion: the corpus against the UK and German sets gives exactly the
exceedances its values imply, once, as valid DetectedIssues."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from server.config import Settings
from server.fhir import FhirService
from server.fhir.validation import validate
from server.ingest import build_ingestor
from server.store.port import Store
from tests.dicom.conftest import CORPUS

SETS = "UKHSA GB 2022,BfS DE 2022"
PHILIPS = CORPUS / "openrem" / "CT-SC-Philips_Brilliance16P.dcm"


def _issues(service: FhirService) -> list[dict[str, Any]]:
    found = service.search("DetectedIssue", [("_count", "100")]).matches
    return [orjson.loads(s.body or b"") for s in found]


def test_the_corpus_against_uk_and_german_drls(
    store: Store, service: FhirService, tmp_path: Path
) -> None:
    ingestor = build_ingestor(store, Settings(data_dir=tmp_path, drl_sets=SETS))
    for path in sorted(CORPUS.rglob("*.dcm")):
        ingestor.ingest_file(path)
    issues = sorted(_issues(service), key=lambda i: i["detail"])
    assert [i["detail"] for i in issues] == [
        "CT Dose Length Product Total 1102 mGy·cm of the examination is 1.67 times the UKHSA GB "
        "2022 DRL of 660 mGy·cm for Chest, abdomen, pelvis (Cancer)",
        "CT Dose Length Product Total 724.5 mGy·cm of the examination is 1.10 times the UKHSA GB "
        "2022 DRL of 660 mGy·cm for Chest, abdomen, pelvis (Cancer)",
    ]
    for issue in issues:
        assert validate(issue) == [], issue
        assert issue["status"] == "preliminary" and issue["severity"] == "moderate"
        summary = orjson.loads(
            service.read(*issue["implicated"][0]["reference"].split("/")).body or b""
        )
        assert summary["code"]["coding"][0]["code"] == "73569-6"  # the dose summary holds the total
        assert issue["patient"] == summary["subject"]
    # the same files again raise nothing new
    for path in sorted(CORPUS.rglob("*.dcm")):
        ingestor.ingest_file(path)
    assert len(_issues(service)) == 2


def test_no_sets_no_comparison(store: Store, service: FhirService, tmp_path: Path) -> None:
    build_ingestor(store, Settings(data_dir=tmp_path)).ingest_file(PHILIPS)
    assert _issues(service) == []


@pytest.mark.parametrize("sets", ["BfS DE 2022", "UKHSA GB 2012"])
def test_other_sets_do_not_apply(
    sets: str, store: Store, service: FhirService, tmp_path: Path
) -> None:
    build_ingestor(store, Settings(data_dir=tmp_path, drl_sets=sets)).ingest_file(PHILIPS)
    assert _issues(service) == []


def _replace_text(items: Any, old: str, new: str) -> None:
    for item in items:
        if getattr(item, "TextValue", None) == old:
            item.TextValue = new
        if "ContentSequence" in item:
            _replace_text(item.ContentSequence, old, new)


def test_a_significant_event_by_the_german_criteria(
    store: Store, service: FhirService, tmp_path: Path
) -> None:
    import io

    from pydicom import dcmread

    # GE's QA scan (CTDIvol 222.59 mGy), presented as a patient's CT: a significant event
    ds = dcmread(CORPUS / "openrem" / "CT-RDSR-GEPixelMed.dcm")
    settings = Settings(data_dir=tmp_path, alert_rules="de_strlschv_annex14")
    ingestor = build_ingestor(store, settings)
    as_is = io.BytesIO()
    ds.save_as(as_is)
    ingestor.ingest_bytes(as_is.getvalue(), "qa.dcm")
    assert _issues(service) == []  # physics and QA studies raise nothing
    _replace_text(ds.ContentSequence, "10.13 RADIOTHERAPY QA", "Abdomen")
    ds.StudyInstanceUID = ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    patient = io.BytesIO()
    ds.save_as(patient)
    assert ingestor.ingest_bytes(patient.getvalue(), "ct.dcm").status == "ingested"
    [issue] = _issues(service)
    assert issue["severity"] == "high"
    assert issue["code"]["coding"][0]["code"] == "significant-event"
    assert issue["detail"] == (
        "StrlSchV Anlage 14 (DE): CTDIvol above 80 mGy in a body CT (single examination); "
        "the value is 222.6 (an irradiation event)"
    )
    event = orjson.loads(service.read(*issue["implicated"][0]["reference"].split("/")).body or b"")
    assert event["code"]["coding"][0]["code"] == "113852"
    assert validate(issue) == []
