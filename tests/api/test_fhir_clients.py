"""FHIR REST as the client libraries integrators use meet it, over a real HTTP server:
fhirpy (search, count, patch, $validate), SMART's fhirclient (read), and plain requests for
what those libraries do not do (XML, conditional update and delete, 406)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import requests
from fhirclient import client as smart_client
from fhirclient.models.patient import Patient as SmartPatient
from fhirpy import SyncFHIRClient
from lxml import etree
from werkzeug.serving import make_server

from tests.graphql.test_fhir_graphql import flash  # noqa: F401

NS = {"f": "http://hl7.org/fhir"}
PATIENT = {"resourceType": "Patient", "identifier": [{"system": "urn:pid", "value": "C1"}],
           "name": [{"family": "Curie", "given": ["Marie"]}], "birthDate": "1867-11-07"}  # fmt: skip


@pytest.fixture
def base(app: Any) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/fhir"
    server.shutdown()


@pytest.fixture
def fhirpy(base: str, tokens: dict[str, str]) -> SyncFHIRClient:
    return SyncFHIRClient(base, authorization=f"Bearer {tokens['mpe']}")


@pytest.fixture
def auth(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['mpe']}"}


def test_fhirpy_searches_and_counts(flash: None, fhirpy: SyncFHIRClient) -> None:  # noqa: F811
    events = fhirpy.resources("Observation").search(code="113852")
    assert events.count() == 4  # sends _totalMethod=count, which Kerma ignores and says so
    assert len(events.fetch()) == 4
    summary = fhirpy.resources("Observation").search(code="http://loinc.org|73569-6").first()
    assert summary is not None and summary["status"] in ("final", "preliminary")


def test_fhirpy_patch_and_validate(fhirpy: SyncFHIRClient, base: str, auth: dict[str, str]) -> None:
    patient = fhirpy.resource("Patient", **PATIENT)
    patient.save()
    patch = [{"op": "replace", "path": "/name/0/family", "value": "Skłodowska-Curie"}]
    answer = requests.patch(f"{base}/Patient/{patient.id}", data=orjson.dumps(patch),
                            headers={**auth, "Content-Type": "application/json-patch+json",
                                     "If-Match": 'W/"1"'}, timeout=10)  # fmt: skip
    assert answer.status_code == 200 and answer.json()["meta"]["versionId"] == "2"
    assert (
        fhirpy.reference("Patient", patient.id).to_resource()["name"][0]["family"]
        == "Skłodowska-Curie"
    )
    stale = requests.patch(f"{base}/Patient/{patient.id}", data=orjson.dumps(patch),
                           headers={**auth, "Content-Type": "application/json-patch+json",
                                    "If-Match": 'W/"1"'}, timeout=10)  # fmt: skip
    assert stale.status_code == 412  # version checks as for PUT
    broken = requests.patch(f"{base}/Patient/{patient.id}",
                            data=b'[{"op": "remove", "path": "/nothing/here"}]',
                            headers={**auth, "Content-Type": "application/json-patch+json"},
                            timeout=10)  # fmt: skip
    assert broken.status_code == 422 and broken.json()["resourceType"] == "OperationOutcome"
    for malformed in (b'{"op": "add"}', b'[{"op": "move", "path": "/gender"}]', b"[1]",
                      b'[{"op": "add", "path": 3, "value": 1}]'):  # fmt: skip
        refused = requests.patch(f"{base}/Patient/{patient.id}", data=malformed,
                                 headers={**auth, "Content-Type": "application/json-patch+json"},
                                 timeout=10)  # fmt: skip
        assert refused.status_code == 400, malformed
    valid = fhirpy.execute("Patient/$validate", data=PATIENT)
    assert valid["resourceType"] == "OperationOutcome"
    # valid: no error; R4's best-practice dom-6 (no narrative) is a warning, as the HL7 validator says
    assert [i["severity"] for i in valid["issue"]] == ["warning"]
    assert valid["issue"][0]["diagnostics"].startswith("dom-6")
    invalid = fhirpy.execute("Patient/$validate", data={**PATIENT, "gender": "robot"})
    assert any(i["severity"] == "error" and "gender" in i.get("expression", [""])[0]
               for i in invalid["issue"])  # fmt: skip


def test_smart_fhirclient_reads(fhirpy: SyncFHIRClient, base: str, tokens: dict[str, str]) -> None:
    made = fhirpy.resource("Patient", **PATIENT)
    made.save()
    smart = smart_client.FHIRClient(settings={"app_id": "kerma-test", "api_base": base})
    smart.server.session.headers["Authorization"] = f"Bearer {tokens['mpe']}"
    patient = SmartPatient.read(made.id, smart.server)
    assert patient.name[0].family == "Curie" and patient.birthDate.isostring == "1867-11-07"


def test_xml_read_search_and_write(flash: None, base: str, auth: dict[str, str]) -> None:  # noqa: F811
    answer = requests.get(f"{base}/Observation?code=113852&_format=xml", headers=auth, timeout=30)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/fhir+xml")
    bundle = etree.fromstring(answer.content)
    assert bundle.tag == "{http://hl7.org/fhir}Bundle"
    assert len(bundle.findall("f:entry/f:resource/f:Observation", NS)) == 4
    by_accept = requests.get(f"{base}/metadata", headers={"Accept": "application/fhir+xml"},
                             timeout=10)  # fmt: skip
    assert etree.fromstring(by_accept.content).tag == "{http://hl7.org/fhir}CapabilityStatement"
    xml = (b'<Patient xmlns="http://hl7.org/fhir"><name><family value="Meitner"/></name>'
           b'<birthDate value="1878-11-07"/></Patient>')  # fmt: skip
    made = requests.post(f"{base}/Patient", data=xml, timeout=10,
                         headers={**auth, "Content-Type": "application/fhir+xml",
                                  "Accept": "application/fhir+xml"})  # fmt: skip
    assert made.status_code == 201
    assert etree.fromstring(made.content).find("f:birthDate", NS).get("value") == "1878-11-07"
    missing = requests.get(f"{base}/Patient/nope", headers={**auth, "Accept": "application/fhir+xml"},
                           timeout=10)  # fmt: skip
    assert missing.status_code == 404
    assert etree.fromstring(missing.content).tag == "{http://hl7.org/fhir}OperationOutcome"
    turtle = requests.get(f"{base}/Patient", headers={**auth, "Accept": "text/turtle"}, timeout=10)
    assert turtle.status_code == 406
    assert requests.get(f"{base}/Patient?_format=ttl", headers=auth, timeout=10).status_code == 406


def test_conditional_update_and_delete(base: str, auth: dict[str, str]) -> None:
    headers = {**auth, "Content-Type": "application/fhir+json"}
    url = f"{base}/Patient?identifier=urn:pid|C2"
    body = {**PATIENT, "identifier": [{"system": "urn:pid", "value": "C2"}]}
    created = requests.put(url, data=orjson.dumps(body), headers=headers, timeout=10)
    assert created.status_code == 201
    updated = requests.put(url, data=orjson.dumps({**body, "gender": "female"}), headers=headers,
                           timeout=10)  # fmt: skip
    assert updated.status_code == 200 and updated.json()["id"] == created.json()["id"]
    assert updated.json()["meta"]["versionId"] == "2"
    twice = {**body, "identifier": [{"system": "urn:pid", "value": "C3"}]}
    for _ in range(2):
        requests.post(f"{base}/Patient", data=orjson.dumps(twice), headers=headers, timeout=10)
    several = requests.put(f"{base}/Patient?identifier=urn:pid|C3", data=orjson.dumps(twice),
                           headers=headers, timeout=10)  # fmt: skip
    assert several.status_code == 412
    assert requests.delete(url, headers=auth, timeout=10).status_code == 204
    assert (
        requests.get(f"{base}/Patient/{created.json()['id']}", headers=auth, timeout=10).status_code
        == 410
    )
    assert requests.delete(url, headers=auth, timeout=10).status_code == 204  # nothing left: fine
