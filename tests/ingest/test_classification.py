"""The starter rule set on the corpus: which studies it classifies, to what; the rest goes to
review. The numbers here are the ones docs/operations.md reports."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from server.config import Settings
from server.fhir import FhirService
from server.fhir.acquisitions import event_procedure
from server.fhir.mapping import CLASSIFICATION_URL
from server.ingest import build_ingestor
from server.store.port import Store
from tests.dicom.conftest import CORPUS

EVENTS, CLASSIFIED_EVENTS = (
    645,
    227,
)  # irradiation events of the patient examinations (README; 7 of the rolled-up studies)
# CT acquisitions and DX/MG radiographs of the patient examinations: all, matched by an
# acquisition rule, classified to a procedure (the rest: localizers, bolus tracking, test
# patterns) (README)
ACQUISITIONS = (63, 63, 45)


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    from server.site import build_service
    from server.store.sqlite import SqliteStore

    data = tmp_path_factory.mktemp("corpus")
    store: Store = SqliteStore(data / "kerma.sqlite3")
    ingestor = build_ingestor(store, Settings(data_dir=data))
    for path in sorted(CORPUS.rglob("*.dcm")):
        ingestor.ingest_file(path)
    service: FhirService = build_service(store)
    found = []
    for stored in service.search("ImagingStudy", [("_count", "500")]).matches:
        study = orjson.loads(stored.body or b"")
        pairs = [("part-of", f"ImagingStudy/{stored.rid}"), ("code", "113852"), ("_count", "5000")]
        events = [orjson.loads(e.body or b"") for e in service.search("Observation", pairs).matches]
        study["events"] = len(events)
        study["acquisitions"] = [event_procedure(e) for e in events]
        study["acquisition_rules"] = [_rule(e) for e in events if CLASSIFICATION_URL in str(e)]
        found.append(study)
    store.close()
    return found


def _rule(resource: dict[str, Any]) -> str:
    [ext] = [e for e in resource["extension"] if e["url"] == CLASSIFICATION_URL]
    return str(ext["extension"][0]["valueString"])


def _uid(study: dict[str, Any]) -> str:
    return str(study["identifier"][0]["value"]).removeprefix("urn:oid:")


def test_corpus_coverage(studies: list[dict[str, Any]]) -> None:
    rules = Counter(_rule(s) for s in studies)
    patient_exams = [s for s in studies if _rule(s) != "qa"]
    classified = [s for s in patient_exams if _rule(s) != "unmatched"]
    events = sum(s["events"] for s in patient_exams)
    classified_events = sum(s["events"] for s in classified)
    print(
        f"{len(classified)} of {len(patient_exams)} examinations, {classified_events} of {events} events"
    )
    assert rules["qa"] == 3  # the physics and QA studies are recognised, not classified
    # 23 by examination rules; 5 more rolled up from acquisitions that all name one procedure
    # (a CT of the cervical spine, one of the neck, a chest/abdomen/pelvis, an abdomen and a
    # PA chest radiograph whose examination words no rule knows)
    assert (len(classified), len(patient_exams)) == (28, 40)
    assert rules["acquisitions"] == 5
    assert (classified_events, events) == (CLASSIFIED_EVENTS, EVENTS)


def test_acquisitions_of_the_corpus(studies: list[dict[str, Any]]) -> None:
    """Each CT acquisition and radiograph (DX, MG) of the patient examinations classified on
    its own: by an acquisition rule (a procedure, or none for localizers and bolus tracking),
    else by its examination's procedure, else not at all."""
    patient = [s for s in studies if _rule(s) != "qa"]
    rules = Counter(r for s in patient for r in s["acquisition_rules"])
    by_own_rule = sum(n for r, n in rules.items() if r != "examination")
    with_procedure = sum(
        1 for s in patient for classified, coding in s["acquisitions"] if classified and coding
    )
    print(
        f"{sum(rules.values())} acquisitions: {by_own_rule} by their own rule, {with_procedure} to a procedure"
    )
    assert (sum(rules.values()), by_own_rule, with_procedure) == ACQUISITIONS
    assert rules["ct-localizer"] == 13 and rules["ct-bolus-tracking"] == 2
    assert (rules["mg-cc"], rules["mg-mlo"]) == (16, 4)


def test_known_studies(studies: list[dict[str, Any]]) -> None:
    def code_of(fragment: str) -> tuple[str, str]:
        [study] = [
            s for s in studies if fragment in s.get("description", "") + str(s.get("procedureCode"))
        ]
        coding = study["procedureCode"][0]["coding"][0]
        return coding["code"], coding["display"]

    assert code_of("Thorax_NON_CON") == ("RPID16", "CT Chest wo IV Contrast")
    assert code_of("CT Thorax abdomen and pelvis with contrast") == (
        "ct-cap-w",
        "CT Chest/Abdomen/Pelvis w IV Contrast",
    )
    assert code_of("Bilateral Mammography") == ("RPID5557", "Mammo Breast Diagnostic")
    tap = next(s for s in studies if "CT Thorax abdomen and pelvis" in str(s.get("procedureCode")))
    assert tap["procedureCode"][0]["text"] == "CT Thorax abdomen and pelvis with contrast"


def test_unmatched_studies_are_on_the_review_list(
    store: Store, service: FhirService, tmp_path: Path
) -> None:
    from server.orders.reconcile import reconciliation

    ingestor = build_ingestor(store, Settings(data_dir=tmp_path))
    ingestor.ingest_file(CORPUS / "openrem" / "RF-RDSR-Siemens-Zee.dcm")
    ingestor.ingest_file(CORPUS / "openrem" / "CT-RDSR-Siemens-Continued-1.dcm")
    listed, named = reconciliation(service, store, "unclassified")
    # the words it had: none but the modality and the SR series name
    assert [e["flag"]["text"] for e in listed["entry"]] == ["RF,SR | Exam Protocol SR"]
    assert len(named) == 1 and named[0].rtype == "ImagingStudy"
