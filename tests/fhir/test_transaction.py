"""Batch and transaction Bundles, with the HL7 Radiation Dose Summary IG's own sample data."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, load


def _entry(
    method: str,
    url: str,
    resource: dict[str, Any] | None = None,
    full_url: str | None = None,
    **request: str,
) -> dict[str, Any]:
    entry: dict[str, Any] = {"request": {"method": method, "url": url, **request}}
    if resource is not None:
        entry["resource"] = resource
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def _bundle(kind: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def _observation(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "dose"}, **fields}


def test_ig_sample_transaction_resolves_uuid_references(api: Api) -> None:
    r = api.post("/fhir", load("fhir-rds-ig/bundle-sample.json"))
    assert r.status_code == 200, r.get_data(as_text=True)
    response = r.get_json()
    assert response["type"] == "transaction-response"
    assert [e["response"]["status"] for e in response["entry"]] == ["201 Created"] * 5
    by_type = {e["resource"]["resourceType"]: e["resource"] for e in response["entry"]}
    obs = by_type["Observation"]
    assert obs["subject"]["reference"] == f"Patient/{by_type['Patient']['id']}"
    assert obs["device"]["reference"] == f"Device/{by_type['Device']['id']}"
    assert obs["partOf"][0]["reference"] == f"ImagingStudy/{by_type['ImagingStudy']['id']}"
    assert obs["performer"][0]["reference"] == f"Practitioner/{by_type['Practitioner']['id']}"
    location = response["entry"][0]["response"]["location"]
    assert location == f"Observation/{obs['id']}/_history/1"


def test_ig_sharing_verification_searches(api: Api) -> None:
    """The five searches of TestScript RDS-sharing-verification, each must find the data."""
    api.post("/fhir", load("fhir-rds-ig/bundle-sample.json"))
    patient = api.search("/fhir/Patient?identifier=PAT3421")
    device = api.search("/fhir/Device?identifier=767ER")
    practitioner = api.search("/fhir/Practitioner?family=Moore&given=John")
    study = api.search("/fhir/ImagingStudy?identifier=urn:oid:1.2.840.121.3.32.0.1.25")
    assert [len(x) for x in (patient, device, practitioner, study)] == [1, 1, 1, 1]
    rds = api.get(
        f"/fhir/Observation?code=73569-6&device={device[0]['id']}&patient={patient[0]['id']}&part-of={study[0]['id']}"
    ).get_json()
    assert rds["total"] == 1
    assert (
        rds["entry"][0]["resource"]["valueString"]
        == "X-ray angiography performed, total dose 212 mGy"
    )


def test_ig_examples_load_with_client_ids(api: Api) -> None:
    r = api.post("/fhir", load("fhir-rds-ig/examples-transaction.json"))
    assert r.status_code == 200, r.get_data(as_text=True)
    assert (
        api.get("/fhir/Observation/139").get_json()["valueString"]
        == "CT Dose Length Product Total = 203.12 mGy.cm"
    )
    dlp = api.search(
        "/fhir/Observation?component-code-value-quantity=113813$gt200|http://unitsofmeasure.org|mGy.cm"
    )
    assert [o["id"] for o in dlp] == ["139"]


def test_transaction_rolls_back_on_any_failure(api: Api) -> None:
    bundle = _bundle(
        "transaction",
        _entry(
            "POST", "Patient", {"resourceType": "Patient", "identifier": [{"value": "ROLLBACK"}]}
        ),
        _entry("POST", "Observation", _observation(status="bogus")),
    )
    r = api.post("/fhir", bundle)
    assert r.status_code == 422
    assert "entry 1" in r.get_json()["issue"][0]["diagnostics"]
    assert api.search("/fhir/Patient?identifier=ROLLBACK") == []


def test_conditional_create_and_conditional_references(api: Api) -> None:
    patient = {"resourceType": "Patient", "identifier": [{"system": "urn:pid", "value": "P9"}]}
    create_patient = _entry(
        "POST", "Patient", patient, "urn:uuid:p", ifNoneExist="identifier=urn:pid|P9"
    )
    first = api.post("/fhir", _bundle("transaction", create_patient)).get_json()
    pid = first["entry"][0]["resource"]["id"]
    observation = _observation(
        subject={"reference": "urn:uuid:p"},
        performer=[{"reference": "Patient?identifier=urn:pid|P9"}],
    )
    second = api.post(
        "/fhir", _bundle("transaction", create_patient, _entry("POST", "Observation", observation))
    )
    entries = second.get_json()["entry"]
    assert entries[0]["response"]["status"] == "200 OK"
    assert entries[0]["resource"]["id"] == pid
    obs = entries[1]["resource"]
    assert obs["subject"]["reference"] == obs["performer"][0]["reference"] == f"Patient/{pid}"
    nobody = _observation(subject={"reference": "Patient?identifier=urn:pid|NOBODY"})
    assert (
        api.post("/fhir", _bundle("transaction", _entry("POST", "Observation", nobody))).status_code
        == 404
    )


def test_transaction_order_update_delete_and_read(api: Api) -> None:
    api.put("/fhir/Device/d1", {"resourceType": "Device", "id": "d1", "manufacturer": "Canon"})
    api.put("/fhir/Device/d2", {"resourceType": "Device", "id": "d2", "manufacturer": "Philips"})
    canon = {"resourceType": "Device", "id": "d1", "manufacturer": "Canon Medical"}
    r = api.post(
        "/fhir",
        _bundle(
            "transaction",
            _entry("GET", "Device?manufacturer=canon"),
            _entry("PUT", "Device/d1", canon, ifMatch='W/"1"'),
            _entry("DELETE", "Device/d2"),
        ),
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    entries = r.get_json()["entry"]
    assert entries[1]["response"]["etag"] == 'W/"2"'
    assert entries[2]["response"]["status"] == "204 No Content"
    # GET runs last: it sees the update of the same transaction
    assert entries[0]["resource"]["entry"][0]["resource"]["manufacturer"] == "Canon Medical"
    assert api.get("/fhir/Device/d2").status_code == 410


def test_batch_entries_succeed_or_fail_alone(api: Api) -> None:
    r = api.post(
        "/fhir",
        _bundle(
            "batch",
            _entry("POST", "Patient", {"resourceType": "Patient", "gender": "female"}),
            _entry("POST", "Patient", {"resourceType": "Patient", "gender": "bogus"}),
            _entry("GET", "Patient/does-not-exist"),
        ),
    )
    assert r.status_code == 200
    statuses = [e["response"]["status"] for e in r.get_json()["entry"]]
    assert statuses == ["201 Created", "422", "404"]
    assert r.get_json()["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"


def test_bundle_shape_errors(api: Api) -> None:
    assert api.post("/fhir", {"resourceType": "Patient"}).status_code == 400
    assert api.post("/fhir", _bundle("collection")).status_code == 400
    no_request = api.post(
        "/fhir", _bundle("transaction", {"resource": {"resourceType": "Patient"}})
    )
    assert no_request.status_code == 400
    assert no_request.get_json()["issue"][0]["expression"] == ["Bundle.entry[0].request"]
    dangling = _observation(subject={"reference": "urn:uuid:nowhere"})
    assert (
        api.post(
            "/fhir", _bundle("transaction", _entry("POST", "Observation", dangling))
        ).status_code
        == 400
    )
