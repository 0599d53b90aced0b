"""Cumulative patient dose (H5) from real files: two CT examinations and a radiograph of one
patient, beside another patient's CT; over REST and GraphQL, audited, not for the authority."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import orjson
import pydicom
import pytest
from pydicom.uid import generate_uid

from server.config import Settings
from server.dose.facts import DoseFact
from server.ingest import build_ingestor
from server.store.port import Store
from tests.conftest import Api

CORPUS = Path(__file__).parent.parent / "data" / "dicom" / "openrem"
PERIOD = "from=1990-01-01&to=2030-01-01"


def _copy(name: str, patient_id: str | None = None) -> bytes:
    """The file as another study (new UIDs), of `patient_id` if given."""
    ds = pydicom.dcmread(CORPUS / name)
    ds.StudyInstanceUID = generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    if patient_id is not None:
        ds.PatientID = patient_id
        if "IssuerOfPatientID" in ds:
            del ds.IssuerOfPatientID
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.fixture
def patient(store: Store, settings: Settings, api: Api) -> str:
    """Patient 123456: the Siemens Flash CT (DLP 724.52 mGy·cm) twice and the Canon CXDI
    radiograph (DAP 1.07e-05 Gy·m²); patient 10293847 has the GE CT."""
    ingestor = build_ingestor(store, settings)
    for name, data in [("CT-RDSR-Siemens_Flash-TAP-SS.dcm", _copy("CT-RDSR-Siemens_Flash-TAP-SS.dcm")),
                       ("flash-again.dcm", _copy("CT-RDSR-Siemens_Flash-TAP-SS.dcm")),
                       ("DX-RDSR-Canon_CXDI.dcm", _copy("DX-RDSR-Canon_CXDI.dcm", "123456")),
                       ("CT-RDSR-GEPixelMed.dcm", _copy("CT-RDSR-GEPixelMed.dcm"))]:  # fmt: skip
        assert ingestor.ingest_bytes(data, name).status == "ingested"
    [found] = api.search("/fhir/Patient?identifier=123456")
    return f"Patient/{found['id']}"


def test_sums_per_modality(patient: str, api: Api) -> None:
    answer = api.get(f"/stats/cumulative?patient={patient}&{PERIOD}")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    ct, dx = answer.get_json()["rows"]
    assert (ct["modality"], ct["examinations"], ct["dlp_mgy_cm_examinations"]) == ("CT", 2, 2)
    assert ct["dlp_mgy_cm"] == pytest.approx(2 * 724.52, abs=0.01)
    assert ct["first"].startswith("1997-01-01")
    # the effective doses Kerma estimated at ingest (CAP, adult, 120 kV: k = 0.0180), labelled
    assert ct["effective_dose_msv_estimate"] == pytest.approx(2 * 724.52 * 0.0180, abs=1e-3)
    assert ct["effective_dose_msv_estimate_examinations"] == 2
    assert dx["effective_dose_msv_estimate_examinations"] == 0
    assert (dx["modality"], dx["examinations"]) == ("DX", 1)
    assert dx["dap_gy_m2"] == pytest.approx(1.07e-05) and dx["dap_gy_m2_examinations"] == 1
    assert dx["dlp_mgy_cm_examinations"] == 0 and dx["first"].startswith("2016-08-18")
    csv_text = api.get(f"/stats/cumulative?patient={patient}&{PERIOD}&format=csv").get_data(
        as_text=True
    )
    assert (
        csv_text.splitlines()[0]
        == "modality,examinations,undated,dlp_mgy_cm,dap_gy_m2,dose_rp_gy,agd_mgy,effective_dose_msv_estimate,first,last"
    )


def test_the_same_over_graphql_audited_and_not_for_the_authority(
    patient: str, api: Api, as_role: Any
) -> None:
    query = """query($p: String!) { cumulativeDose(patient: $p, from: "1990-01-01", to: "2030-01-01") {
        modality examinations dlpMgyCm dapGyM2 effectiveDoseMsvEstimate first } }"""
    body = orjson.dumps({"query": query, "variables": {"p": patient}})
    headers = api.headers({"Content-Type": "application/json"})
    answer = api.client.post("/fhir/$graphql", data=body, headers=headers).get_json()
    rest = api.get(f"/stats/cumulative?patient={patient}&{PERIOD}").get_json()["rows"]
    assert [
        (r["modality"], r["examinations"], r["dlpMgyCm"]) for r in answer["data"]["cumulativeDose"]
    ] == [(r["modality"], r["examinations"], r["dlp_mgy_cm"]) for r in rest]
    events = as_role("admin").search("/fhir/AuditEvent?_count=1000")
    about = [e for e in events if {"reference": patient} in [x.get("what") for x in e["entity"]]]
    paths = {x["description"] for e in about for x in e["entity"] if "description" in x}
    assert {"GET /stats/cumulative", "POST /fhir/$graphql"} <= paths
    assert as_role("authority").get(f"/stats/cumulative?patient={patient}").status_code == 403
    # a radiographer reads the dose data of their own devices only, not sums over all of them
    assert as_role("radiographer").get(f"/stats/cumulative?patient={patient}").status_code == 403
    assert api.get(f"/stats/cumulative?patient=123456&{PERIOD}").status_code == 400


def test_the_patients_record_with_the_cumulative_dose(patient: str, api: Api, as_role: Any) -> None:
    from server.fhir.validation import validate

    rid = patient.split("/")[1]
    answer = api.get(f"/fhir/Patient/{rid}/$everything?start=1990-01-01&end=2030-01-01")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    resources = [e["resource"] for e in answer.get_json()["entry"]]
    kinds = [r["resourceType"] for r in resources]
    assert kinds.count("Patient") == 1 and kinds.count("ImagingStudy") == 3
    assert "AuditEvent" not in kinds
    about = {r.get("subject", r.get("patient", {})).get("reference") for r in resources
             if r["resourceType"] in ("ImagingStudy", "Observation")}  # fmt: skip
    assert about == {patient}  # nothing of the other patient
    summaries = [
        r
        for r in resources
        if r.get("code", {}).get("coding", [{}])[0].get("code") == "cumulative-dose"
    ]
    by_modality = {
        s["component"][0]["valueCodeableConcept"]["coding"][0]["code"]: s for s in summaries
    }
    assert set(by_modality) == {"CT", "DX"}
    ct = {
        c["code"].get("coding", [{}])[0].get("code", c["code"].get("text")): c
        for c in by_modality["CT"]["component"]
    }
    assert ct["examinations"]["valueInteger"] == 2
    assert ct["113813"]["valueQuantity"]["value"] == pytest.approx(1449.04, abs=0.01)
    assert ct["113813"]["valueQuantity"]["code"] == "mGy.cm"
    assert ct["113839"]["valueQuantity"]["value"] == pytest.approx(2 * 724.52 * 0.0180, abs=1e-3)
    assert "population estimate" in ct["113839"]["code"]["text"]
    assert by_modality["DX"]["effectivePeriod"]["start"].startswith("1990-01-01")
    for summary in summaries:
        assert summary["meta"]["tag"][0]["code"] == "computed"
        assert validate(summary) == [], summary
    # the authority role reads no patients; a radiographer of another device no dose events
    assert as_role("authority").get(f"/fhir/Patient/{rid}/$everything").status_code == 403
    other = as_role("radiographer").get(f"/fhir/Patient/{rid}/$everything").get_json()
    assert not [e for e in other["entry"] if e["resource"]["resourceType"] == "Observation"
                and (e["resource"].get("device") or "cumulative" in str(e["resource"]["code"]))]  # fmt: skip


def test_an_examination_without_a_date_still_counts(patient: str, api: Api, store: Store) -> None:
    """A CT of patient 123456 whose dose facts have no date (no study date, no event times):
    its DLP counts in every period asked for, said as undated."""
    with store.transaction() as tx:
        tx.replace_facts("2.25.4242", [DoseFact("study:2.25.4242", "study", "2.25.4242",
                                                "Observation/undated", "CT", patient=patient,
                                                dlp_mgy_cm=300.0)])  # fmt: skip
    for period in (PERIOD, "from=2020-01-01&to=2021-01-01"):
        [ct, *_] = api.get(f"/stats/cumulative?patient={patient}&{period}").get_json()["rows"]
        assert ct["modality"] == "CT" and ct["undated"] == 1, ct
    ct = api.get(f"/stats/cumulative?patient={patient}&{PERIOD}").get_json()["rows"][0]
    assert (ct["examinations"], ct["dlp_mgy_cm_examinations"]) == (3, 3)
    assert ct["dlp_mgy_cm"] == pytest.approx(2 * 724.52 + 300.0, abs=0.01)
    assert ct["first"].startswith("1997-01-01")  # the dated ones place it in time
    lonely = api.get(
        f"/stats/cumulative?patient={patient}&from=2020-01-01&to=2021-01-01"
    ).get_json()
    [only] = lonely["rows"]
    assert (only["examinations"], only["first"], only["dlp_mgy_cm"]) == (1, None, 300.0)
