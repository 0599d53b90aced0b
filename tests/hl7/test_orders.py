"""Orders (ORM^O01, OMI^O23) become ServiceRequests with the values they carry, and each is
tied to the ImagingStudy of real ingested dose data, whichever of the two arrives first."""

from __future__ import annotations

from typing import Any

from server.config import Settings
from server.fhir import FhirService
from server.ingest import build_ingestor
from server.ingest.hl7 import Hl7Handler, build_handler
from server.store.port import Store
from tests.dicom.conftest import SIEMENS_CT
from tests.hl7.conftest import SIEMENS_STUDY_UID, body, err, message, msa, msh, sample

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def _orders(service: FhirService) -> list[dict[str, Any]]:
    found = service.search("ServiceRequest", [("_count", "50")]).matches
    return [body(service, f"ServiceRequest/{s.rid}") for s in found]


def _identifier(resource: dict[str, Any], code: str) -> str:
    return next(
        i["value"]
        for i in resource["identifier"]
        if i.get("type", {}).get("coding", [{}])[0].get("code") == code
    )


def test_an_ihe_orm_o01(handler: Hl7Handler, service: FhirService) -> None:
    answer = handler.handle(sample("ORM_O01-dcm4che-2019-radiology-MR.hl7"))
    assert msa(answer)[1] == "AA", err(answer)
    [order] = _orders(service)
    assert (_identifier(order, "PLAC"), _identifier(order, "FILL")) == ("A103Z", "B103Z")
    assert _identifier(order, "ACSN") == "MOF5026"  # OBR-18 in IHE scheduled workflow
    assert {"system": "urn:dicom:uid", "value": "urn:oid:1.113654.3.13.1026"} in order["identifier"]
    assert order["status"] == "active" and order["intent"] == "order"
    assert order["category"][0]["coding"][0]["code"] == "MR"
    assert order["code"] == {"text": "Procedure 1 (ERL_MESA)"}  # a local code system
    assert order["requester"] == {"display": "DR JAIME ESTRADA", "identifier": {"value": "7101"}}
    assert order["priority"] == "stat"
    assert order["authoredOn"] == "2000-07-01T09:00:00Z"
    patient = body(service, order["subject"]["reference"])
    assert patient["name"][0]["family"] == "DOE" and patient["gender"] == "male"


def test_an_omi_o23_with_ipc_and_a_reason(handler: Hl7Handler, service: FhirService) -> None:
    assert msa(handler.handle(sample("OMI_O23-dcm4che-ImagingOrder.hl7")))[1] == "AA"
    [order] = _orders(service)
    assert _identifier(order, "ACSN") == "AccessionNumber"  # IPC-1
    assert order["category"][0]["coding"][0]["code"] == "CT"  # IPC-5
    assert order["code"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "10637-7",
        "display": "Microscopic Observation",
    }
    assert order["reasonCode"][0]["text"].startswith("Rheumatoid, other arthritis")
    assert "–35" in order["reasonCode"][0]["text"]  # UTF-8 sent under an 8859/1 label
    assert order["occurrenceDateTime"] == "2000-08-16T15:10:00Z"  # TQ1-7
    # the same order sent in another shape (OBR-18 and ZDS instead of IPC): updated, not doubled
    assert (
        msa(handler.handle(sample("OMI_O23-dcm4che-filed-as-ORM_O01-GeneralOrder.hl7")))[1] == "AA"
    )
    [order] = _orders(service)
    assert order["meta"]["versionId"] == "2"


def test_cancelling_an_order(handler: Hl7Handler, service: FhirService) -> None:
    new = sample("ORM_O01-dcm4che-2019-radiology-MR.hl7")
    handler.handle(new)
    cancel = new.replace(b"|103106|", b"|103107|").replace(b"ORC|NW|", b"ORC|CA|")
    assert msa(handler.handle(cancel))[1] == "AA"
    [order] = _orders(service)
    assert order["status"] == "revoked"
    unknown = new.replace(b"|103106|", b"|103108|").replace(b"ORC|NW|", b"ORC|ZZ|")
    answer = handler.handle(unknown)
    assert msa(answer)[1] == "AE" and err(answer) == "ERR|ORC^1^1^103&Table value not found&HL70357"


def omi(control: str, accession: str, study_uid: str = "") -> bytes:
    """An OMI^O23 order (placer P-1, filler F-1) for the accession, and the study UID if given."""
    return message(
        msh("OMI^O23^OMI_O23", control),
        "PID|||123456^^^HOSP||SMITH^JOHN||19600412|M",
        "ORC|NW|P-1|F-1||SC",
        "TQ1|||||||19970101080000",
        "OBR||P-1|F-1|CTCHEST^CT chest^L||||||||||||^WHO^DR||||||||CT",
        f"IPC|{accession}|RP-1|{study_uid}|SPS-1|CT",
    )


def test_order_first_then_the_dose_data(site: Settings, store: Store, service: FhirService) -> None:
    assert msa(build_handler(store, site).handle(omi("O1", "ACC12345601")))[1] == "AA"
    assert build_ingestor(store, site).ingest_file(SIEMENS_CT).status == "ingested"
    [order] = _orders(service)
    [study] = service.search("ImagingStudy", [("_count", "5")]).matches
    assert body(service, f"ImagingStudy/{study.rid}")["basedOn"] == [
        {"reference": f"ServiceRequest/{order['id']}"}
    ]
    assert body(service, f"ImagingStudy/{study.rid}")["subject"] == order["subject"]


def test_dose_data_first_then_the_order_by_study_uid(
    site: Settings, store: Store, service: FhirService
) -> None:
    build_ingestor(store, site).ingest_file(SIEMENS_CT)
    # the accession is wrong in the order, the study UID is right: the UID decides
    assert msa(build_handler(store, site).handle(omi("O2", "OTHER", SIEMENS_STUDY_UID)))[1] == "AA"
    [order] = _orders(service)
    [study] = service.search("ImagingStudy", [("basedon", f"ServiceRequest/{order['id']}")]).matches
    assert _identifier(body(service, f"ImagingStudy/{study.rid}"), "ACSN") == "ACC12345601"


def test_an_order_for_another_accession_links_nothing(
    site: Settings, store: Store, service: FhirService
) -> None:
    build_ingestor(store, site).ingest_file(SIEMENS_CT)
    build_handler(store, site).handle(omi("O3", "ACC-ELSEWHERE"))
    [study] = service.search("ImagingStudy", [("_count", "5")]).matches
    assert "basedOn" not in body(service, f"ImagingStudy/{study.rid}")
