"""FHIR Bulk Data $export: async kick-off (202, Content-Location), polling, a manifest, ndjson
files; system, Patient and Group level, _type and _since; pseudonymised for the authority
role (no names, no birth dates, identifiers hashed), only for the user who asked."""

from __future__ import annotations

import time
from typing import Any

import orjson

from server.config import Settings
from server.ingest import build_ingestor
from server.store.port import Store
from tests.conftest import Api
from tests.dicom.conftest import CORPUS
from tests.ingest.test_drl_checks import PHILIPS

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
SIEMENS = CORPUS / "openrem" / "CT-RDSR-Siemens_Flash-TAP-SS.dcm"


def _run(api: Api, url: str) -> dict[str, Any]:
    started = api.get(url, **ASYNC)
    assert started.status_code == 202, started.get_data(as_text=True)
    status = started.headers["Content-Location"].split("/fhir", 1)[1]
    deadline = time.monotonic() + 60
    while (answer := api.get(f"/fhir{status}")).status_code == 202:
        assert "X-Progress" in answer.headers and time.monotonic() < deadline
        time.sleep(0.05)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    manifest: dict[str, Any] = answer.get_json()
    manifest["status"] = status
    return manifest


def _lines(api: Api, manifest: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    [entry] = [o for o in manifest["output"] if o["type"] == rtype]
    answer = api.get("/fhir" + entry["url"].split("/fhir", 1)[1])
    assert answer.status_code == 200 and answer.content_type == "application/fhir+ndjson"
    lines = [orjson.loads(line) for line in answer.data.splitlines()]
    assert len(lines) == entry["count"]
    return lines


def test_system_export_identified_for_the_mpe(store: Store, settings: Settings, api: Api) -> None:
    ingestor = build_ingestor(store, settings)
    ingestor.ingest_file(PHILIPS)
    ingestor.ingest_file(SIEMENS)
    manifest = _run(api, "/fhir/$export?_type=Patient,ImagingStudy,Observation")
    assert manifest["requiresAccessToken"] is True and manifest["error"] == []
    assert manifest["request"].endswith("/fhir/$export?_type=Patient,ImagingStudy,Observation")
    assert {o["type"] for o in manifest["output"]} == {"Patient", "ImagingStudy", "Observation"}
    patients = _lines(api, manifest, "Patient")
    assert len(patients) == 2 and all("identifier" in p for p in patients)
    assert {p["identifier"][0]["value"] for p in patients} >= {"123456"}
    assert len(_lines(api, manifest, "Observation")) > 8  # summaries, events, measurements
    # the files are gone after DELETE
    assert api.delete(f"/fhir{manifest['status']}").status_code == 202
    assert api.get(f"/fhir{manifest['status']}").status_code == 404


def test_pseudonymised_for_the_authority(store: Store, settings: Settings, as_role: Any) -> None:
    build_ingestor(store, settings).ingest_file(SIEMENS)
    authority = as_role("authority")
    manifest = _run(authority, "/fhir/Patient/$export")
    [patient] = _lines(authority, manifest, "Patient")
    assert not {"name", "birthDate", "address", "telecom"} & set(patient)
    [identifier] = patient["identifier"]
    assert identifier["system"] == "urn:kerma:pseudonym" and identifier["value"] != "123456"
    [study] = _lines(authority, manifest, "ImagingStudy")
    assert "1.3.6.1.4.1.5962" not in orjson.dumps(study).decode()  # the UIDs are hashed
    assert not any("patient-at-modality" in e["url"] for e in study.get("extension", []))
    text = b"".join(
        authority.get("/fhir" + o["url"].split("/fhir", 1)[1]).data for o in manifest["output"]
    )
    assert b"AuditEvent" not in text
    # the export is the authority's: another user may not fetch it
    assert as_role("viewer").get(f"/fhir{manifest['status']}").status_code == 403


def test_group_level_and_since(store: Store, settings: Settings, api: Api) -> None:
    ingestor = build_ingestor(store, settings)
    ingestor.ingest_file(PHILIPS)
    ingestor.ingest_file(SIEMENS)
    patients = api.search("/fhir/Patient")
    siemens = next(p for p in patients if p["identifier"][0]["value"] == "123456")
    group = {"resourceType": "Group", "type": "person", "actual": True,
             "member": [{"entity": {"reference": f"Patient/{siemens['id']}"}}]}  # fmt: skip
    gid = api.post("/fhir/Group", group).get_json()["id"]
    manifest = _run(api, f"/fhir/Group/{gid}/$export?_type=Patient,ImagingStudy")
    assert [p["id"] for p in _lines(api, manifest, "Patient")] == [siemens["id"]]
    [study] = _lines(api, manifest, "ImagingStudy")
    assert study["subject"]["reference"] == f"Patient/{siemens['id']}"
    later = _run(api, "/fhir/$export?_type=Patient&_since=2100-01-01T00:00:00Z")
    assert later["output"] == []


def test_bad_kick_offs(api: Api, as_role: Any) -> None:
    assert api.get("/fhir/$export").status_code == 400  # no Prefer: respond-async
    assert api.get("/fhir/$export?_outputFormat=text/csv", **ASYNC).status_code == 400
    assert api.get("/fhir/$export?_type=AuditEvent", **ASYNC).status_code == 400
    assert api.get("/fhir/Patient/$export?_type=Device", **ASYNC).status_code == 400
    assert api.get("/fhir/$export?_since=yesterday", **ASYNC).status_code == 400
    assert api.get("/fhir/Group/nope/$export", **ASYNC).status_code == 404
    assert as_role("radiographer").get("/fhir/$export", **ASYNC).status_code == 403
    assert api.get("/fhir/$export-status/nope").status_code == 404
