"""FHIR resources over GraphQL (hl7.org/fhir/graphql.html) on a real Siemens CT dose report:
read, <Type>List with the REST search parameters, <Type>Connection with cursors, references
resolved, reverse references with `_reference`, the instance level; roles, device
restrictions and the audit trail as in REST; depth and cost limits."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from server.auth.users import add_user
from server.config import Settings
from server.ingest import build_ingestor
from server.store.port import Store
from tests.conftest import Api

FLASH = (
    Path(__file__).parent.parent / "data" / "dicom" / "openrem" / "CT-RDSR-Siemens_Flash-TAP-SS.dcm"
)
CTDIVOL, DLP = "113830", "113838"  # DCM codes of the event's components
EVENTS = """{ ImagingStudyList {
  id started subject { reference resource { ... on Patient { id gender } } }
  ObservationList(_reference: part_of, code: "113852", _sort: "date") {
    id component { code { coding { code } } valueQuantity { value unit system code } }
  } } }"""


def post(
    api: Api, query: str, variables: dict[str, Any] | None = None, url: str = "/fhir/$graphql"
) -> Any:
    return api.client.post(
        url,
        data=orjson.dumps({"query": query, "variables": variables or {}}),
        headers=api.headers({"Content-Type": "application/json"}),
    )


def data(api: Api, query: str, **variables: Any) -> Any:
    answer = post(api, query, variables)
    body = answer.get_json()
    assert answer.status_code == 200 and "errors" not in body, body
    return body["data"]


def error(api: Api, query: str) -> dict[str, Any]:
    body = post(api, query).get_json()
    assert body.get("errors"), body
    first: dict[str, Any] = body["errors"][0]
    assert first["extensions"]["resource"]["resourceType"] == "OperationOutcome"
    assert "Traceback" not in str(body)
    return first


@pytest.fixture
def flash(store: Store, settings: Settings) -> None:
    """The Siemens SOMATOM Definition Flash thorax-abdomen-pelvis report: 4 CT events."""
    result = build_ingestor(store, settings).ingest_bytes(FLASH.read_bytes(), FLASH.name)
    assert result.status == "ingested"


def _component(observation: dict[str, Any], code: str) -> dict[str, Any]:
    return next(c["valueQuantity"] for c in observation["component"]
                if c["code"]["coding"][0]["code"] == code)  # fmt: skip


def test_the_events_of_a_study_with_their_ctdivol_in_mgy(flash: None, api: Api) -> None:
    [study] = data(api, EVENTS)["ImagingStudyList"]
    events = study["ObservationList"]
    ctdivol = [_component(e, CTDIVOL) for e in events]
    # the file's CTDIvol per event (OpenREM's expected values), in mGy as UCUM
    assert [q["value"] for q in ctdivol] == pytest.approx([0.14, 1.2, 3.61, 9.91])
    assert {(q["unit"], q["system"], q["code"]) for q in ctdivol} == {
        ("mGy", "http://unitsofmeasure.org", "mGy")
    }
    assert sum(_component(e, DLP)["value"] for e in events) == pytest.approx(724.52, abs=0.01)
    patient = study["subject"]["resource"]
    assert study["subject"]["reference"] == f"Patient/{patient['id']}"
    # the same resources as REST gives, in their FHIR shape
    rest = api.search(
        f"/fhir/Observation?part-of=ImagingStudy/{study['id']}&code=113852&_sort=date"
    )
    assert [e["id"] for e in events] == [r["id"] for r in rest]
    assert events[3]["component"] == [
        {k: v for k, v in c.items() if k in ("code", "valueQuantity")}
        | {
            "code": {"coding": [{"code": c["code"]["coding"][0]["code"]}]},
            "valueQuantity": c.get("valueQuantity"),
        }
        for c in rest[3]["component"]
    ]


def test_read_by_id_lists_with_or_and_the_instance_level(flash: None, api: Api) -> None:
    [study] = api.search("/fhir/ImagingStudy")
    query = (
        "query($id: ID!) { ImagingStudy(id: $id) { id resourceType started modality { code } } }"
    )
    read = data(api, query, id=study["id"])
    assert read["ImagingStudy"] == {
        "id": study["id"], "resourceType": "ImagingStudy", "started": study["started"],
        "modality": [{"code": m["code"]} for m in study["modality"]],
    }  # fmt: skip
    both = data(
        api, '{ ObservationList(code: ["113852", "73569-6"]) { code { coding { code } } } }'
    )
    codes = [o["code"]["coding"][0]["code"] for o in both["ObservationList"]]
    assert sorted(codes) == ["113852"] * 4 + ["73569-6"]

    query = (
        '{ id resourceType ObservationList(_reference: part_of, code: "113852", _count: 2) { id } }'
    )
    answer = api.client.get(f"/fhir/ImagingStudy/{study['id']}/$graphql", query_string={"query": query},
                            headers=api.headers())  # fmt: skip
    assert answer.status_code == 200 and answer.content_type.startswith("application/json")
    root = answer.get_json()["data"]
    assert root["id"] == study["id"] and len(root["ObservationList"]) == 2
    missing = api.client.get("/fhir/ImagingStudy/nope/$graphql", query_string={"query": "{ id }"},
                             headers=api.headers())  # fmt: skip
    assert missing.status_code == 404
    assert missing.get_json()["resourceType"] == "OperationOutcome"


def test_connection_pages_with_cursors(flash: None, api: Api) -> None:
    page = """{ ObservationConnection(code: "113852", _sort: "date", _count: 3) {
        count offset pagesize first previous next last edges { mode resource { id } } } }"""
    first = data(api, page)["ObservationConnection"]
    assert (first["count"], first["offset"], first["pagesize"], first["previous"]) == (
        4,
        0,
        3,
        None,
    )
    assert len(first["edges"]) == 3 and first["edges"][0]["mode"] == "match"
    follow = "query($c: String) { ObservationConnection(_cursor: $c) { offset next previous edges { resource { id } } } }"
    second = data(api, follow, c=first["next"])["ObservationConnection"]
    assert second["offset"] == 3 and second["next"] is None and second["previous"] == first["first"]
    ids = [e["resource"]["id"] for e in first["edges"] + second["edges"]]
    rest = api.search("/fhir/Observation?code=113852&_sort=date")
    assert ids == [r["id"] for r in rest]
    assert data(api, follow, c=first["last"])["ObservationConnection"]["offset"] == 3

    assert (
        "cursor"
        in error(api, '{ ObservationConnection(_cursor: "bm9wZQ==") { count } }')["message"]
    )
    mixed = 'query($c: String) { ObservationConnection(_cursor: $c, code: "x") { count } }'
    answer = post(api, mixed, {"c": first["next"]}).get_json()
    assert "no other arguments" in answer["errors"][0]["message"]


def test_bad_searches_and_references_are_errors_with_an_outcome(flash: None, api: Api) -> None:
    unknown = error(api, '{ ObservationList(date: "yesterday") { id } }')
    assert unknown["extensions"]["resource"]["issue"][0]["code"] == "invalid"
    assert (
        error(api, '{ Patient(id: "nope") { id } }')["extensions"]["resource"]["issue"][0]["code"]
        == "not-found"
    )
    # Observation.device may point at a Device but not at a Patient
    wrong = error(api, "{ PatientList { ObservationList(_reference: device) { id } } }")
    assert "no reference parameter 'device' to Patient" in wrong["message"]
    unknown_field = error(api, "{ ObservationList { shoeSize } }")
    assert "Cannot query field 'shoeSize'" in unknown_field["message"]
    assert unknown_field["extensions"]["resource"]["issue"][0]["code"] == "invalid"


def test_references_that_cannot_be_resolved(flash: None, api: Api) -> None:
    dangling = {"resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/gone"},
                "code": {"coding": [{"system": "urn:test", "code": "dangling"}]}}  # fmt: skip
    assert api.post("/fhir/Observation", dangling).status_code == 201
    query = '{ ObservationList(code: "urn:test|dangling") { subject { resource%s { ... on Patient { id } } } } }'
    assert "Patient/gone cannot be resolved" in error(api, query % "")["message"]
    optional = data(api, query % "(optional: true)")["ObservationList"]
    assert optional == [{"subject": {"resource": None}}]
    # type: only a reference to that type resolves
    events = '{ ObservationList(code: "113852", _count: 1) { subject { resource(type: "%s") { ... on Patient { gender } } } } }'
    assert data(api, events % "Device")["ObservationList"] == [{"subject": {"resource": None}}]
    assert data(api, events % "Patient")["ObservationList"] == [
        {"subject": {"resource": {"gender": "male"}}}
    ]


def test_roles_and_devices_as_in_rest(flash: None, api: Api, as_role: Any, store: Store) -> None:
    authority = error(as_role("authority"), "{ ObservationList { id } }")
    assert authority["extensions"]["resource"]["issue"][0]["code"] == "forbidden"
    assert data(as_role("authority"), "{ DeviceList { manufacturer } }")["DeviceList"] == [
        {"manufacturer": "SIEMENS"}
    ]
    assert post(as_role("nobody"), "{ DeviceList { id } }").status_code == 401

    [device] = api.search("/fhir/Device")
    own = Api(
        api.client, add_user(store, "ct-radiographer", "radiographer", (f"Device/{device['id']}",))
    )
    other = as_role("radiographer")  # works on Device/dev-a
    query = '{ ObservationList(code: "113852") { id } }'
    assert len(data(own, query)["ObservationList"]) == 4
    assert data(other, query)["ObservationList"] == []
    # the reverse references go through the same restriction
    nested = '{ ImagingStudyList { ObservationList(_reference: part_of, code: "113852") { id } } }'
    assert data(other, nested)["ImagingStudyList"] == [{"ObservationList": []}]
    assert len(data(own, nested)["ImagingStudyList"][0]["ObservationList"]) == 4


def test_patient_data_queries_are_audited(flash: None, api: Api, as_role: Any) -> None:
    before = len(as_role("admin").search("/fhir/AuditEvent?_count=1000"))
    [patient] = data(api, "{ PatientList { id } }")["PatientList"]
    data(
        api,
        '{ doseStatistics(quantity: "dlp_mgy_cm", from: "1996-01-01", to: "1998-01-01") { unit } }',
    )
    events = as_role("admin").search("/fhir/AuditEvent?_count=1000&_sort=-_lastUpdated")
    assert len(events) == before + 1  # the aggregate query disclosed no patient
    [event] = events[:1]
    assert event["subtype"][0]["code"] == "operation"
    assert {"reference": f"Patient/{patient['id']}"} in [e.get("what") for e in event["entity"]]
    assert any(e.get("description") == "POST /fhir/$graphql" for e in event["entity"])
    assert event["agent"][0]["who"]["identifier"]["value"] == "mpe-user"


def test_depth_and_cost_limits(api: Api) -> None:
    deep = (
        "{ PatientList { "
        + "link { other { resource { ... on Patient { " * 5
        + "id"
        + " } } } }" * 5
        + " } }"
    )
    assert "exceeds maximum operation depth" in post(api, deep).get_json()["errors"][0]["message"]
    members = "ObservationList(_reference: has_member) { id %s }"
    costly = "{ ObservationList { id %s } }" % (members % members % "")  # 1000 x 50 x 50 ids
    message = error(api, costly)["message"]
    assert "would cost" in message and "more than the 1000000 allowed" in message
    cheap = "{ ObservationList(_count: 10) { id ObservationList(_reference: has_member, _count: 5) { id } } }"
    assert "errors" not in post(api, cheap).get_json()


def test_a_query_is_validated_once_and_refused_alike_each_time(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validation (depth and cost with graphql-core's rules) is kept per query text: the same
    query again is not validated again, and a refused one is refused with the same error."""
    import strawberry.schema.schema

    validated: list[str] = []
    validate = strawberry.schema.schema.validate

    def counting(schema: Any, document: Any, rules: Any) -> Any:
        validated.append(document.definitions[0].selection_set.selections[0].alias.value)
        return validate(schema, document, rules)

    monkeypatch.setattr(strawberry.schema.schema, "validate", counting)
    alias = f"q{uuid.uuid4().hex}"  # a query no other test sent to this process's cache
    good, bad = f"{{ {alias}: PatientList {{ id }} }}", f"{{ {alias}: PatientList {{ idd }} }}"
    answers = [post(api, query).get_json() for query in (good, good, bad, bad)]
    assert validated == [alias, alias]  # once for each text
    assert answers[0] == answers[1] == {"data": {alias: []}}
    assert answers[2] == answers[3] and "Cannot query field 'idd'" in str(answers[2]["errors"])


def test_a_defect_is_masked_and_logged(
    flash: None, api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from server.graphql import loaders

    def broken(*_: Any) -> Any:
        raise RuntimeError("disk on fire at /secret/path")

    monkeypatch.setattr(loaders.Loaders, "matches", broken)
    failure = error(api, "{ ImagingStudyList { subject { resource { ... on Patient { id } } } } }")
    assert failure["extensions"]["resource"]["issue"][0]["code"] == "exception"
    assert "secret" not in str(failure)
    assert "disk on fire" in caplog.text
