"""A40 merges move real ingested dose data (a Siemens CT RDSR of the corpus) to the surviving
patient; the FHIR API shows it there; the merged patient says where it went; an admin undoes it."""

from __future__ import annotations

import io
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

from server.config import Settings
from server.fhir import FhirService
from server.ingest import build_ingestor
from server.ingest.hl7 import Hl7Handler
from server.store.port import Store
from tests.conftest import Api
from tests.dicom.conftest import SIEMENS_CT
from tests.hl7.conftest import SIEMENS_STUDY_UID, body, message, msa, msh, patients

HOSP = "urn:kerma:patient-id:HOSP"
# what the Siemens file says: Patient ID 123456, no issuer; the site's issuer is HOSP
DICOM_ID = "123456"


@pytest.fixture
def ingested(site: Settings, store: Store, service: FhirService) -> str:
    """The CT study of the Siemens RDSR, ingested before any ADT: its patient came from DICOM."""
    assert build_ingestor(store, site).ingest_file(SIEMENS_CT).status == "ingested"
    [patient] = patients(service, f"{HOSP}|{DICOM_ID}")
    return f"Patient/{patient['id']}"


def _dose_resources(service: FhirService, patient_ref: str) -> dict[str, int]:
    return {
        rtype: service.search(rtype, [("patient", patient_ref), ("_count", "1")]).total or 0
        for rtype in ("ImagingStudy", "Observation")
    }


def test_adt_finds_the_patient_dicom_created_by_identifier_and_issuer(
    adt: Hl7Handler, service: FhirService, ingested: str
) -> None:
    answer = adt.handle(
        message(
            msh("ADT^A08^ADT_A01", "M0"), f"PID|||{DICOM_ID}^^^HOSP^MR||Smith^John^Q||19600412|M"
        )
    )
    assert msa(answer)[1:4] == ["AA", "M0", ingested]
    patient = body(service, ingested)
    assert patient["birthDate"] == "1960-04-12"
    assert patient["name"][0]["given"] == ["John", "Q"]
    assert len(patient["identifier"]) == 1  # the same identifier, now with its type


def test_a40_moves_every_dose_resource_to_the_survivor_and_unmerge_moves_them_back(
    adt: Hl7Handler,
    service: FhirService,
    ingested: str,
    api: Api,
    as_role: Any,
    site: Settings,
    store: Store,
) -> None:
    ingestor = build_ingestor(store, site)
    before = _dose_resources(service, ingested)
    assert before["ImagingStudy"] == 1 and before["Observation"] > 5
    adt.handle(message(msh("ADT^A04^ADT_A01", "M1"), "PID|||900001^^^HOSP||Smith^John||19600412|M"))
    [survivor] = patients(service, f"{HOSP}|900001")
    survivor_ref = f"Patient/{survivor['id']}"

    merge = message(
        msh("ADT^A40^ADT_A39", "M2"),
        "PID|||900001^^^HOSP||Smith^John||19600412|M",
        f"MRG|{DICOM_ID}^^^HOSP",
    )
    answer = adt.handle(merge)
    assert msa(answer)[1] == "AA"
    moved = before["ImagingStudy"] + before["Observation"]
    assert msa(answer)[3] == f"{ingested} merged into {survivor_ref}, {moved} moved"
    assert _dose_resources(service, survivor_ref) == before
    assert _dose_resources(service, ingested) == {"ImagingStudy": 0, "Observation": 0}
    # the statistics' projection follows
    assert {f.patient for f in store.facts(study_uid=SIEMENS_STUDY_UID)} == {survivor_ref}

    # over the FHIR API: the study is the survivor's; the old id says where its data went
    studies = api.search(f"/fhir/ImagingStudy?patient={survivor_ref}")
    assert len(studies) == 1 and studies[0]["subject"]["reference"] == survivor_ref
    old = api.get(f"/fhir/{ingested}").get_json()
    assert old["active"] is False
    assert old["link"] == [{"other": {"reference": survivor_ref}, "type": "replaced-by"}]
    kept = api.get(f"/fhir/{survivor_ref}").get_json()
    assert {"other": {"reference": ingested}, "type": "replaces"} in kept["link"]
    assert {i["value"] for i in kept["identifier"]} == {"900001", DICOM_ID}
    [provenance] = api.search(f"/fhir/Provenance?entity={ingested}")
    assert provenance["activity"]["coding"][0]["code"] == "merge"
    assert len(provenance["target"]) == 2 + moved

    # the same message again is applied once
    assert adt.handle(merge) == answer
    # a later study sent under the old ID lands on the survivor
    later = dcmread(SIEMENS_CT)
    later.StudyInstanceUID, later.SOPInstanceUID = generate_uid(), generate_uid()
    buffer = io.BytesIO()
    later.save_as(buffer)
    assert ingestor.ingest_bytes(buffer.getvalue(), "later.dcm").status == "ingested"
    [later_study] = service.search(
        "ImagingStudy", [("identifier", f"urn:dicom:uid|urn:oid:{later.StudyInstanceUID}")]
    ).matches
    assert body(service, f"ImagingStudy/{later_study.rid}")["subject"]["reference"] == survivor_ref
    assert adt.handle(merge) == answer
    # only an admin may undo it
    assert as_role("mpe").post(f"/fhir/{ingested}/$unmerge", {}).status_code == 403
    undone = as_role("admin").post(f"/fhir/{ingested}/$unmerge", {})
    assert undone.status_code == 200, undone.get_data(as_text=True)
    assert undone.get_json()["activity"]["coding"][0]["code"] == "unmerge"
    assert _dose_resources(service, ingested) == before
    assert {f.patient for f in store.facts(study_uid=SIEMENS_STUDY_UID)} == {ingested}
    # only what the merge moved goes back: the later study stays with the survivor
    assert _dose_resources(service, survivor_ref) == before
    assert body(service, ingested)["active"] is True and "link" not in body(service, ingested)
    assert "link" not in body(service, survivor_ref)
    assert as_role("admin").post(f"/fhir/{ingested}/$unmerge", {}).status_code == 409


def test_an_update_for_a_merged_identifier_lands_on_the_survivor(
    adt: Hl7Handler, service: FhirService, ingested: str
) -> None:
    adt.handle(
        message(
            msh("ADT^A40^ADT_A39", "N1"),
            "PID|||900002^^^HOSP||Smith^John||19600412|M",
            f"MRG|{DICOM_ID}^^^HOSP",
        )
    )
    [survivor] = patients(service, f"{HOSP}|900002")
    answer = adt.handle(
        message(msh("ADT^A08^ADT_A01", "N2"), f"PID|||{DICOM_ID}^^^HOSP||Smith^Johnny||19600412|M")
    )
    assert msa(answer)[3] == f"Patient/{survivor['id']}"
    assert body(service, ingested)["active"] is False
