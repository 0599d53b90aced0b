"""Authentication (401), the role matrix (403), the audit trail, and names kept out of logs."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest

from server.auth.roles import roles
from tests.conftest import Api

PATIENT = {
    "resourceType": "Patient",
    "id": "pat-1",
    "identifier": [{"system": "urn:pid", "value": "AUD1"}],
    "name": [{"family": "Zwicky", "given": ["Fritz"]}],
    "birthDate": "1898-02-14",
}


def _observation(rid: str, device: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"text": "dose"},
        "subject": {"reference": "Patient/pat-1"},
        "device": {"reference": f"Device/{device}"},
    }


@pytest.fixture
def seeded(as_role: Any) -> None:
    admin = as_role("admin")
    for path, body in [
        ("/fhir/Patient/pat-1", PATIENT),
        ("/fhir/Device/dev-a", {"resourceType": "Device", "id": "dev-a"}),
        ("/fhir/Device/dev-b", {"resourceType": "Device", "id": "dev-b"}),
        ("/fhir/Observation/obs-a", _observation("obs-a", "dev-a")),
        ("/fhir/Observation/obs-b", _observation("obs-b", "dev-b")),
        (
            "/fhir/MeasureReport/mr-1",
            {
                "resourceType": "MeasureReport",
                "id": "mr-1",
                "status": "complete",
                "type": "summary",
                "measure": "https://kerma.example.org/Measure/ct-dlp",
                "period": {"start": "2024-01-01"},
            },
        ),
    ]:
        assert admin.put(path, body).status_code == 201


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer wrong-token", "Basic dXNlcjpwYXNz"])
def test_every_fhir_call_needs_a_valid_token(client: Any, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    for method, url in [
        ("GET", "/fhir/Patient"),
        ("GET", "/fhir/Patient/x"),
        ("POST", "/fhir"),
        ("GET", "/fhir/_history"),
    ]:
        r = client.open(url, method=method, headers=headers)
        assert r.status_code == 401, (method, url)
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        assert r.get_json()["issue"][0]["code"] == "login"


def test_revoked_token_is_refused(client: Any, tokens: dict[str, str], store: Any) -> None:
    headers = {"Authorization": f"Bearer {tokens['viewer']}"}
    assert client.get("/fhir/Patient", headers=headers).status_code == 200
    store.set_user_active("viewer-user", False)
    assert client.get("/fhir/Patient", headers=headers).status_code == 401


# (role, method, url, expected status) — the role matrix of docs/operations.md, cell by cell
MATRIX = [
    ("admin", "GET", "/fhir/AuditEvent", 200),
    ("mpe", "GET", "/fhir/AuditEvent", 403),
    ("viewer", "GET", "/fhir/AuditEvent", 403),
    ("mpe", "GET", "/fhir/Patient/pat-1", 200),
    ("viewer", "GET", "/fhir/Patient/pat-1", 200),
    ("radiographer", "GET", "/fhir/Patient/pat-1", 200),
    ("integration", "GET", "/fhir/Patient/pat-1", 200),
    ("authority", "GET", "/fhir/Patient/pat-1", 403),
    ("authority", "GET", "/fhir/Observation", 403),
    ("authority", "GET", "/fhir/MeasureReport/mr-1", 200),
    ("authority", "GET", "/fhir/Device", 200),
    ("radiographer", "GET", "/fhir/Observation/obs-a", 200),
    ("radiographer", "GET", "/fhir/Observation/obs-b", 403),
    ("viewer", "PUT", "/fhir/Device/dev-a", 403),
    ("radiographer", "PUT", "/fhir/Device/dev-a", 403),
    ("integration", "PUT", "/fhir/Device/dev-a", 200),
    ("mpe", "PUT", "/fhir/Device/dev-a", 200),
    ("integration", "DELETE", "/fhir/Device/dev-b", 403),
    ("viewer", "DELETE", "/fhir/Device/dev-b", 403),
    ("mpe", "DELETE", "/fhir/Device/dev-b", 204),
    ("viewer", "GET", "/fhir/_history", 200),
    ("authority", "GET", "/fhir/_history", 403),
]


@pytest.mark.parametrize(("role", "method", "url", "status"), MATRIX)
def test_role_matrix(
    seeded: None, as_role: Any, role: str, method: str, url: str, status: int
) -> None:
    api: Api = as_role(role)
    if method == "PUT":
        r = api.put(
            url, {"resourceType": "Device", "id": url.rsplit("/", 1)[1], "manufacturer": "X"}
        )
    elif method == "DELETE":
        r = api.delete(url)
    else:
        r = api.get(url)
    assert r.status_code == status, r.get_data(as_text=True)
    if status == 403:
        assert r.get_json()["issue"][0]["code"] == "forbidden"


def test_every_role_is_in_the_matrix() -> None:
    assert {row[0] for row in MATRIX} == set(roles())


def test_radiographer_sees_only_own_device_observations(seeded: None, as_role: Any) -> None:
    radiographer: Api = as_role("radiographer")
    assert [o["id"] for o in radiographer.search("/fhir/Observation")] == ["obs-a"]
    assert [o["id"] for o in radiographer.search("/fhir/Observation?device=dev-b")] == []
    revinclude = radiographer.get(
        "/fhir/Patient?_id=pat-1&_revinclude=Observation:patient"
    ).get_json()
    assert sorted(e["resource"]["id"] for e in revinclude["entry"]) == ["obs-a", "pat-1"]


def test_transaction_entries_are_checked_against_the_role(seeded: None, as_role: Any) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "DELETE", "url": "Device/dev-a"}},
        ],
    }
    assert as_role("integration").post("/fhir", bundle).status_code == 403
    assert as_role("viewer").post("/fhir", bundle).status_code == 403
    assert as_role("mpe").post("/fhir", bundle).status_code == 200


def test_patient_data_reads_are_audited(seeded: None, as_role: Any) -> None:
    viewer: Api = as_role("viewer")
    admin: Api = as_role("admin")
    before = admin.get("/fhir/AuditEvent?patient=pat-1&_summary=count").get_json()["total"]
    viewer.get("/fhir/Observation/obs-a")
    viewer.get("/fhir/Observation?code:text=x")  # refused (400): discloses nothing, audits nothing
    viewer.get("/fhir/Device")  # no patient data: not audited
    viewer.get("/fhir/Patient?family=zwicky")
    events = admin.search("/fhir/AuditEvent?patient=pat-1&_sort=-date")
    assert len(events) == before + 2
    search, read = events[0], events[1]
    assert read["subtype"][0]["code"] == "read" and read["action"] == "R"
    assert search["subtype"][0]["code"] == "search-type" and search["action"] == "E"
    assert search["agent"][0]["who"]["identifier"]["value"] == "viewer-user"
    request_entity = search["entity"][-1]
    assert base64.b64decode(request_entity["query"]).decode() == "family=zwicky"
    assert admin.search("/fhir/AuditEvent?altid=viewer-user&subtype=search-type")
    from fhir.resources.R4B.auditevent import AuditEvent

    AuditEvent.model_validate(search)


def test_logs_never_hold_patient_names(
    seeded: None, as_role: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api: Api = as_role("mpe")
    api.get("/fhir/Patient?family=Zwicky&birthdate=1898-02-14")
    api.put(
        "/fhir/Patient/pat-1", {**PATIENT, "name": [{"family": "Zwicky", "given": ["Fritz", "Z."]}]}
    )
    api.get("/fhir/Patient?name=zwicky&_sort=bogus")
    text = caplog.text
    assert "request method=GET path=/fhir/Patient status=200" in text
    for secret in ("Zwicky", "zwicky", "Fritz", "1898"):
        assert secret not in text
