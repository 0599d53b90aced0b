"""Reconciliation lists and $reassign on real dose data: the Siemens CT RDSR arrives under a
trauma registration ("Motorbike, accident"), the HIS knows the patient by another name, an
order waits for its study; an MPE reassigns the study and the lists empty."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread

from server.config import Settings
from server.fhir import FhirService
from server.ingest import build_ingestor
from server.ingest.hl7 import Hl7Handler
from server.store.port import Store
from server.store.sqlite import SqliteStore
from tests.conftest import Api
from tests.dicom.conftest import SIEMENS_CT
from tests.hl7.conftest import SIEMENS_STUDY_UID, body, message, msa, msh, patients


@pytest.fixture
def trauma(site: Settings, store: Store, service: FhirService) -> str:
    """The CT study, keyed in at the scanner as an emergency registration: its ImagingStudy."""
    ds = dcmread(SIEMENS_CT)
    ds.PatientID, ds.PatientName, ds.PatientSex = "EMERG0042", "Motorbike^accident 18:10", "O"
    buffer = io.BytesIO()
    ds.save_as(buffer)
    assert (
        build_ingestor(store, site).ingest_bytes(buffer.getvalue(), "ct.dcm").status == "ingested"
    )
    [study] = service.search("ImagingStudy", [("_count", "5")]).matches
    return f"ImagingStudy/{study.rid}"


def _listed(api: Api, kind: str, hours: str = "24") -> list[tuple[str, str]]:
    r = api.get(f"/fhir/List/$reconcile?kind={kind}&hours={hours}")
    assert r.status_code == 200, r.get_data(as_text=True)
    return [(e["item"]["reference"], e["flag"]["text"]) for e in r.get_json().get("entry", [])]


def test_lists_then_reassign(
    adt: Hl7Handler, service: FhirService, trauma: str, api: Api, as_role: Any, store: Store
) -> None:
    # the HIS: the real patient, and the CT order (due in 1997) the study was meant to answer
    adt.handle(message(msh("ADT^A04", "R1"), "PID|||555^^^HOSP||Smith^John||19600412|M"))
    order_answer = adt.handle(
        message(
            msh("OMI^O23^OMI_O23", "R2"),
            "PID|||555^^^HOSP||Smith^John||19600412|M",
            "ORC|NW|P-9|F-9||SC",
            "TQ1|||||||19970101080000",
            "OBR||P-9|F-9|CTCHEST^CT chest^L",
            "IPC|ACC-555|RP-9||SPS-9|CT",
        )
    )
    assert msa(order_answer)[1] == "AA"
    order_ref = msa(order_answer)[3]
    [smith] = patients(service, "urn:kerma:patient-id:HOSP|555")
    [emergency] = patients(service, "urn:kerma:patient-id:HOSP|EMERG0042")

    assert _listed(api, "orders-without-dose") == [
        (order_ref, "due 1997-01-01T08:00:00Z, no study")
    ]
    assert _listed(api, "orders-without-dose", hours=str(30 * 365 * 24)) == []  # not due yet
    assert _listed(api, "dose-without-order") == [(trauma, "no basedOn")]
    assert _listed(api, "demographics-mismatch") == []  # the emergency patient is what was keyed in
    # the HIS registers the emergency ID with the real name: now the two disagree
    adt.handle(message(msh("ADT^A08", "R3"), "PID|||EMERG0042^^^HOSP||Smith^John||19600412|M"))
    [(study, why)] = _listed(api, "demographics-mismatch")
    assert study == trauma
    assert why == (
        "name: modality 'Motorbike^accident 18:10', HIS Smith^John; "
        "birthDate: modality 1929-05-19, HIS 1960-04-12; gender: modality other, HIS male"
    )

    # the MPE moves the study to the real patient and ties it to the order
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "patient", "valueReference": {"reference": f"Patient/{smith['id']}"}},
            {"name": "serviceRequest", "valueReference": {"reference": order_ref}},
        ],
    }
    assert as_role("radiographer").post(f"/fhir/{trauma}/$reassign", parameters).status_code == 403
    done = api.post(f"/fhir/{trauma}/$reassign", parameters)
    assert done.status_code == 200, done.get_data(as_text=True)
    provenance = done.get_json()
    assert provenance["activity"]["coding"][0]["code"] == "reassign"
    assert provenance["entity"][0]["what"]["reference"] == f"Patient/{emergency['id']}"
    moved = [t["reference"] for t in provenance["target"][2:]]
    assert any(m.startswith(f"{trauma}/_history/") for m in moved)
    events = service.search("Observation", [("part-of", trauma), ("_count", "1")]).total
    assert events and len(moved) == events + 1  # the study and every Observation of it

    study_now = body(service, trauma)
    assert study_now["subject"] == {"reference": f"Patient/{smith['id']}"}
    assert study_now["basedOn"] == [{"reference": order_ref}]
    assert service.search("Observation", [("patient", f"Patient/{emergency['id']}")]).total == 0
    assert {f.patient for f in store.facts(study_uid=SIEMENS_STUDY_UID)} == {
        f"Patient/{smith['id']}"
    }
    assert _listed(api, "orders-without-dose") == []
    assert _listed(api, "dose-without-order") == []
    # the patient keyed in at the modality still is not Smith by name: the list says so
    assert [s for s, _ in _listed(api, "demographics-mismatch")] == [trauma]
    audit = as_role("admin").get("/fhir/AuditEvent?_count=50").get_json()
    assert any(
        e["resource"]["entity"][-1]["description"] == f"POST /fhir/{trauma}/$reassign"
        for e in audit["entry"]
    )


def test_reassign_refuses_what_it_cannot_do(trauma: str, api: Api) -> None:
    r = api.post(f"/fhir/{trauma}/$reassign", {"resourceType": "Parameters", "parameter": []})
    assert r.status_code == 400 and r.get_json()["resourceType"] == "OperationOutcome"
    gone = {
        "resourceType": "Parameters",
        "parameter": [{"name": "patient", "valueReference": {"reference": "Patient/nope"}}],
    }
    assert api.post(f"/fhir/{trauma}/$reassign", gone).status_code == 404
    assert api.get("/fhir/List/$reconcile?kind=everything").status_code == 400
    for hours in ("1e18", "nan", "-1"):
        assert (
            api.get(f"/fhir/List/$reconcile?kind=orders-without-dose&hours={hours}").status_code
            == 400
        )


def test_kerma_reconcile_prints_the_list(site: Settings, store: Store, trauma: str) -> None:
    import os
    import subprocess
    import sys

    if not isinstance(store, SqliteStore):
        pytest.skip("the command reads the embedded store of KERMA_DATA_DIR")

    done = subprocess.run(
        [str(Path(sys.executable).parent / "kerma"), "reconcile", "dose-without-order"],
        env={**os.environ, "KERMA_DATA_DIR": str(site.data_dir)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"reference\twhy\n{trauma}\tno basedOn\n"
