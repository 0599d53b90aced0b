"""FHIR REST interactions over HTTP (Flask test client), with their status codes and headers."""

from __future__ import annotations

from typing import Any

import orjson

from tests.conftest import Api

DCM = "http://dicom.nema.org/resources/ontology/DCM"


def patient(pid: str = "PAT1", family: str = "Doe") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:pid", "value": pid}],
        "name": [{"family": family, "given": ["Jane"]}],
        "gender": "female",
        "birthDate": "1960-04-01",
    }


def outcome_of(response: Any) -> dict[str, Any]:
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome", body
    return body["issue"][0]  # type: ignore[no-any-return]


def test_create_read_vread_update_delete(api: Api) -> None:
    created = api.post("/fhir/Patient", patient())
    assert created.status_code == 201
    assert created.headers["ETag"] == 'W/"1"'
    rid = created.get_json()["id"]
    assert created.headers["Location"] == f"http://kerma.test/fhir/Patient/{rid}/_history/1"
    assert created.get_json()["meta"]["versionId"] == "1"

    read = api.get(f"/fhir/Patient/{rid}")
    assert read.status_code == 200 and read.content_type.startswith("application/fhir+json")
    assert read.get_json()["name"][0]["family"] == "Doe"
    assert api.get(f"/fhir/Patient/{rid}", **{"If-None-Match": 'W/"1"'}).status_code == 304

    body = {**read.get_json(), "gender": "other"}
    updated = api.put(f"/fhir/Patient/{rid}", body, **{"If-Match": 'W/"1"'})
    assert updated.status_code == 200 and updated.headers["ETag"] == 'W/"2"'
    stale = api.put(f"/fhir/Patient/{rid}", body, **{"If-Match": 'W/"1"'})
    assert stale.status_code == 412 and outcome_of(stale)["code"] == "conflict"

    assert api.get(f"/fhir/Patient/{rid}/_history/1").get_json()["gender"] == "female"
    assert api.get(f"/fhir/Patient/{rid}/_history/2").get_json()["gender"] == "other"
    assert api.get(f"/fhir/Patient/{rid}/_history/9").status_code == 404

    assert api.delete(f"/fhir/Patient/{rid}").status_code == 204
    gone = api.get(f"/fhir/Patient/{rid}")
    assert gone.status_code == 410 and outcome_of(gone)["code"] == "deleted"
    history = api.get(f"/fhir/Patient/{rid}/_history").get_json()
    assert history["type"] == "history" and history["total"] == 3
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "PUT", "POST"]
    assert [e["response"]["status"] for e in history["entry"]] == [
        "204 No Content",
        "200 OK",
        "201 Created",
    ]


def test_update_creates_with_client_id_and_checks_id(api: Api) -> None:
    body = {**patient(), "id": "pat-a"}
    assert api.put("/fhir/Patient/pat-a", body).status_code == 201
    assert api.put("/fhir/Patient/pat-a", body).status_code == 200
    mismatch = api.put("/fhir/Patient/pat-b", body)
    assert mismatch.status_code == 400 and outcome_of(mismatch)["expression"] == ["Patient.id"]


def test_conditional_create(api: Api) -> None:
    first = api.post("/fhir/Patient", patient("C1"), **{"If-None-Exist": "identifier=urn:pid|C1"})
    again = api.post("/fhir/Patient", patient("C1"), **{"If-None-Exist": "identifier=urn:pid|C1"})
    assert first.status_code == 201 and again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"]
    api.post("/fhir/Patient", patient("C1"))
    several = api.post("/fhir/Patient", patient("C1"), **{"If-None-Exist": "identifier=urn:pid|C1"})
    assert several.status_code == 412 and outcome_of(several)["code"] == "multiple-matches"


def test_invalid_resource_is_422_with_path(api: Api) -> None:
    bad = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "dose"},
        "component": [{"code": {"text": "DLP"}, "valueQuantity": {"value": "lots"}}],
    }
    r = api.post("/fhir/Observation", bad)
    assert r.status_code == 422
    assert outcome_of(r)["expression"] == ["Observation.component[0].valueQuantity.value"]
    bogus_status = api.post("/fhir/Observation", {**bad, "status": "bogus", "component": []})
    assert bogus_status.status_code == 422 and outcome_of(bogus_status)["expression"] == [
        "Observation.status"
    ]
    unknown_element = api.post("/fhir/Patient", {**patient(), "shoeSize": 42})
    assert unknown_element.status_code == 422 and outcome_of(unknown_element)["expression"] == [
        "Patient.shoeSize"
    ]


def test_bad_requests_get_operation_outcomes(api: Api, client: Any) -> None:
    assert api.post("/fhir/Patient", {**patient(), "resourceType": "Device"}).status_code == 400
    not_json = api.client.post(
        "/fhir/Patient",
        data=b"{nope",
        headers=api.headers({"Content-Type": "application/fhir+json"}),
    )
    assert not_json.status_code == 400 and outcome_of(not_json)["code"] == "structure"
    xml = api.client.post(
        "/fhir/Patient",
        data=b"<Patient/>",  # not in the FHIR namespace
        headers=api.headers({"Content-Type": "application/fhir+xml"}),
    )
    assert xml.status_code == 400 and outcome_of(xml)["code"] == "structure"
    turtle = api.client.post(
        "/fhir/Patient", data=b"x", headers=api.headers({"Content-Type": "text/turtle"})
    )
    assert turtle.status_code == 415 and outcome_of(turtle)["code"] == "not-supported"
    assert api.get("/fhir/Spaceship/1").status_code == 404
    assert api.get("/fhir/Patient/nope").status_code == 404
    patch = api.client.patch("/fhir/Patient/x", headers=api.headers())  # no JSON Patch
    assert patch.status_code == 415 and outcome_of(patch)["code"] == "not-supported"
    # unknown search parameters: ignored and said so, unless the client asks for strict handling
    strict = api.client.get(
        "/fhir/Patient?shoe-size=42", headers=api.headers({"Prefer": "handling=strict"})
    )
    assert strict.status_code == 400 and "shoe-size" in outcome_of(strict)["diagnostics"]
    lenient = api.get("/fhir/Patient?shoe-size=42")
    assert lenient.status_code == 200
    said = lenient.get_json()["entry"][-1]
    assert said["search"]["mode"] == "outcome" and "shoe-size" in str(said["resource"])
    assert api.get("/fhir/Observation?date=2024-13-45").status_code == 400
    assert api.get("/fhir/Observation?value-quantity=lots").status_code == 400


def test_oversized_body_is_413(api: Api) -> None:
    huge = {**patient(), "name": [{"family": "x" * 70_000}]}
    r = api.post("/fhir/Patient", huge)
    assert r.status_code == 413 and outcome_of(r)["code"] == "too-costly"


def test_no_stack_trace_reaches_the_client(api: Api, app: Any, monkeypatch: Any) -> None:
    service = app.extensions["kerma.fhir"]

    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(service, "read", explode)
    r = api.get("/fhir/Patient/x")
    assert r.status_code == 500
    text = r.get_data(as_text=True)
    assert "secret internals" not in text and "Traceback" not in text
    assert outcome_of(r)["code"] == "exception"


def _load_events(api: Api, n: int) -> str:
    pid = api.post("/fhir/Patient", patient("EV")).get_json()["id"]
    for i in range(n):
        obs = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": DCM, "code": "113852"}]},
            "subject": {"reference": f"Patient/{pid}"},
            "effectiveDateTime": f"2024-01-{i + 1:02d}T08:00:00Z",
            "valueQuantity": {
                "value": 10 + i,
                "system": "http://unitsofmeasure.org",
                "code": "mGy",
            },
        }
        assert api.post("/fhir/Observation", obs).status_code == 201
    return str(pid)


def test_search_paging_links_are_stable(api: Api) -> None:
    _load_events(api, 7)
    first = api.get("/fhir/Observation?code=113852&_count=3&_sort=date").get_json()
    assert first["total"] == 7
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert set(links) == {"self", "first", "next", "last"}
    seen = [e["resource"]["effectiveDateTime"][:10] for e in first["entry"]]
    url = links["next"]
    while url:
        page = api.get(url.removeprefix("http://kerma.test")).get_json()
        seen += [e["resource"]["effectiveDateTime"][:10] for e in page["entry"]]
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    assert seen == [f"2024-01-{d:02d}" for d in range(1, 8)]
    last = api.get(links["last"].removeprefix("http://kerma.test")).get_json()
    assert len(last["entry"]) == 1 and any(link["relation"] == "previous" for link in last["link"])


def test_search_by_post_summary_elements_total(api: Api) -> None:
    pid = _load_events(api, 3)
    form = api.client.post(
        "/fhir/Observation/_search",
        data={"patient": pid, "value-quantity": "ge11"},
        headers=api.headers(),
    )
    assert form.status_code == 200 and form.get_json()["total"] == 2
    count = api.get(f"/fhir/Observation?patient={pid}&_summary=count").get_json()
    assert count["total"] == 3 and "entry" not in count
    elements = api.get(f"/fhir/Observation?patient={pid}&_elements=valueQuantity").get_json()
    resource = elements["entry"][0]["resource"]
    assert set(resource) == {"resourceType", "id", "meta", "valueQuantity"}
    assert resource["meta"]["tag"][-1]["code"] == "SUBSETTED"
    no_total = api.get(f"/fhir/Observation?patient={pid}&_total=none").get_json()
    assert "total" not in no_total and len(no_total["entry"]) == 3
    summary = api.get(f"/fhir/Patient/{pid}?_summary=true").get_json()
    assert summary["meta"]["tag"][-1]["code"] == "SUBSETTED" and "identifier" in summary


def test_include_revinclude_and_chain_over_http(api: Api) -> None:
    pid = _load_events(api, 2)
    bundle = api.get(f"/fhir/Patient?_id={pid}&_revinclude=Observation:patient").get_json()
    modes = sorted(e["search"]["mode"] for e in bundle["entry"])
    assert modes == ["include", "include", "match"]
    with_patient = api.get(
        "/fhir/Observation?subject:Patient.identifier=urn:pid|EV&_include=Observation:patient"
    ).get_json()
    assert with_patient["total"] == 2
    assert [e["resource"]["resourceType"] for e in with_patient["entry"]].count("Patient") == 1


def test_type_and_system_history(api: Api) -> None:
    api.post("/fhir/Device", {"resourceType": "Device", "manufacturer": "GE"})
    api.post("/fhir/Patient", patient())
    devices = api.get("/fhir/Device/_history").get_json()
    assert devices["total"] == 1
    everything = api.get("/fhir/_history?_count=1").get_json()
    assert everything["total"] >= 2 and len(everything["entry"]) == 1
    assert api.get("/fhir/_history?_since=not-a-date").status_code == 400


def test_capability_statement_is_public_and_matches_the_registry(client: Any) -> None:
    r = client.get("/fhir/metadata")
    assert r.status_code == 200
    cs = r.get_json()
    assert cs["fhirVersion"] == "4.0.1" and cs["kind"] == "instance"
    obs = next(res for res in cs["rest"][0]["resource"] if res["type"] == "Observation")
    names = {p["name"] for p in obs["searchParam"]}
    assert {
        "patient",
        "code",
        "date",
        "component-code-value-quantity",
        "part-of",
        "device",
    } <= names
    assert "Observation:patient" in obs["searchInclude"]
    from fhir.resources.R4B.capabilitystatement import CapabilityStatement

    CapabilityStatement.model_validate(cs)


def test_health_is_public(client: Any) -> None:
    r = client.get("/health")
    assert r.status_code == 200 and r.get_json() == {"status": "ok", "store": "sqlite"}


def test_stored_json_is_returned_unchanged(api: Api) -> None:
    created = api.post("/fhir/Patient", patient()).get_json()
    raw = api.get(f"/fhir/Patient/{created['id']}").get_data()
    assert orjson.loads(raw) == created


def test_concurrent_update_is_409(api: Api, store: Any, monkeypatch: Any) -> None:
    """When another writer commits the same version first, the client hears 409, not 500."""
    from server.store.port import VersionConflict
    from server.store.sqlite import SqliteTransaction

    created = api.post("/fhir/Patient", patient()).get_json()

    def lose_the_race(self: Any, write: Any) -> None:
        raise VersionConflict(f"{write.rtype}/{write.rid} is at version 2")

    monkeypatch.setattr(SqliteTransaction, "write", lose_the_race)
    r = api.put(f"/fhir/Patient/{created['id']}", {**created, "gender": "other"})
    assert r.status_code == 409 and outcome_of(r)["code"] == "conflict"


def test_unicode_digits_are_not_numbers(api: Api) -> None:
    """'²'.isdigit() is True in Python; such input must be a client error, not a server one."""
    created = api.post("/fhir/Patient", patient()).get_json()
    assert api.get(f"/fhir/Patient/{created['id']}/_history/²").status_code == 404
    assert api.get(f"/fhir/Patient/{created['id']}/_history/{'9' * 40}").status_code == 404
    assert api.get("/fhir/Patient?_count=²").status_code == 400
    assert api.get("/fhir/Patient/_history?_offset=٣").status_code == 400
    r = api.put(f"/fhir/Patient/{created['id']}", created, **{"If-Match": 'W/"²"'})
    assert r.status_code == 400
