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
