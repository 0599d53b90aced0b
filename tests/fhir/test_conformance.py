"""Kerma's resources against FHIR R4 and the Radiation Dose Summary IG, with the
snapshot-driven validator of server/fhir/conformance.py: the IG's own examples conform (the
validator reads the profiles as the IG means them), the faults found in Kerma's output are
caught (the validator can fail), every resource made from the whole corpus is valid R4 and
conforms to every profile it claims, a device heard over DICOM claims and meets the IG's
Device profile, and `$validate` answers with the same validator."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydicom.filereader import read_file_meta_info
from pynetdicom.dsutils import encode_file_meta

from server.config import Settings
from server.fhir.conformance import known_profiles, problems
from server.fhir.mapping import DEVICE_PROFILE, RDS_PROFILE
from server.fhir.validation import validate
from server.ingest import build_ingestor
from server.site import build_service
from server.store.port import Store
from server.store.sqlite import SqliteStore
from tests.conftest import Api
from tests.dicom.conftest import SIEMENS_CT

IG = Path(__file__).parent.parent / "data" / "fhir-rds-ig" / "examples"
CORPUS = Path(__file__).parent.parent / "data" / "dicom"
TYPES = ("Patient", "Practitioner", "Device", "ImagingStudy", "Observation", "Provenance",
         "DetectedIssue", "ServiceRequest")  # fmt: skip


def _errors(resource: dict[str, Any]) -> list[str]:
    claimed = [p for p in resource.get("meta", {}).get("profile", []) if p in known_profiles()]
    found = validate(resource) + problems(resource, claimed)
    return [f"{i.expression}: {i.diagnostics}" for i in found if i.severity in ("error", "fatal")]


@pytest.mark.parametrize("path", sorted(IG.glob("*.json")), ids=lambda p: p.stem)
def test_the_igs_examples_conform(path: Path) -> None:
    resource = json.loads(path.read_text())
    assert _errors(resource) == []


def test_the_faults_found_in_kermas_output_are_caught() -> None:
    summary = json.loads((IG / "Observation-139.json").read_text())
    cases = {
        "display": ("code", {"coding": [{"system": "http://loinc.org", "code": "73569-6"}]}),
        "performer": ("performer", None),
        "subject": ("subject", None),
        "effective": ("effectiveDateTime", None),
        "identifier type": ("partOf", [{"reference": "ImagingStudy/342", "identifier": {
            "system": "urn:dicom:uid", "value": "urn:oid:1.2.3", "type": {"coding": [{
                "system": "http://hl7.org/fhir/uv/radiation-dose-summary/CodeSystem/dicom-identifier-type",
                "code": "study-instance-uid"}]}}}]),
    }  # fmt: skip
    for fault, (element, value) in cases.items():
        broken = copy.deepcopy(summary)
        if value is None:
            broken.pop(element)
        else:
            broken[element] = value
        assert problems(broken, [RDS_PROFILE]), fault
    device = json.loads((IG / "Device-539.json").read_text())
    device["identifier"] = [i for i in device["identifier"]
                            if i.get("type", {}).get("coding", [{}])[0].get("code") != "application-entity"]  # fmt: skip
    assert any("aeTitle" in (i.expression or "") for i in problems(device, [DEVICE_PROFILE]))
    both = {"resourceType": "MeasureReport", "status": "complete", "type": "summary",
            "measure": "http://x/Measure/m", "period": {"start": "2026-01-01"},
            "group": [{"stratifier": [{"stratum": [{"value": {"text": "a"},
                       "component": [{"code": {"text": "x"}, "value": {"text": "y"}}]}]}]}]}  # fmt: skip
    assert any("mrp-2" in i.diagnostics for i in problems(both, []))


def _as_sent(path: Path, spooled: Path) -> Path:
    """The file as Kerma's SCP spools it when a modality sends it: the calling AE title (here
    made from the vendor's folder) in the file meta. Files without file meta stay as they are."""
    data = path.read_bytes()
    if data[128:132] != b"DICM":
        return path
    meta = read_file_meta_info(path)
    rest = data[132 + 12 + meta.FileMetaInformationGroupLength :]
    meta.SourceApplicationEntityTitle = path.parent.name.upper()[:16]
    spooled.write_bytes(b"".join((b"\x00" * 128, b"DICM", encode_file_meta(meta), rest)))
    return spooled


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Store:
    settings = Settings(data_dir=tmp_path_factory.mktemp("conformance"))
    store = SqliteStore(settings.sqlite_path)
    ingestor = build_ingestor(store, settings)
    spool = tmp_path_factory.mktemp("spool")
    for at, path in enumerate(sorted(CORPUS.rglob("*.dcm"))):
        ingestor.ingest_spooled(_as_sent(path, spool / f"{at}.dcm"))
    return store


def test_every_resource_made_from_the_corpus_conforms(corpus: Store) -> None:
    service = build_service(corpus)
    claims: dict[str, int] = {}
    failures = []
    for rtype in TYPES:
        for stored in service.search(rtype, [("_count", "5000")]).matches:
            resource = orjson.loads(stored.body or b"{}")
            for profile in resource.get("meta", {}).get("profile", []):
                claims[profile] = claims.get(profile, 0) + 1
            failures += [f"{rtype}/{stored.rid} {e}" for e in _errors(resource)]
    assert failures == []
    summaries = service.search(
        "Observation", [("code", "http://loinc.org|73569-6"), ("_summary", "count")]
    )
    assert claims[RDS_PROFILE] >= 40 and summaries.total is not None
    assert summaries.total - claims[RDS_PROFILE] <= 3  # reports with no time of irradiation at all
    devices = service.search("Device", [("_summary", "count")]).total
    assert devices and claims[DEVICE_PROFILE] == devices  # all heard with a calling AE title


def test_every_summary_has_a_patient_and_an_authorizing_person(corpus: Store) -> None:
    service = build_service(corpus)
    found = service.search("Observation", [("code", "http://loinc.org|73569-6"), ("_count", "500")])
    summaries = [orjson.loads(s.body or b"{}") for s in found.matches]
    assert summaries and all("subject" in s and s.get("performer") for s in summaries)
    practitioners = {orjson.loads(s.body or b"{}")["identifier"][0]["value"]
                     for s in service.search("Practitioner", [("_count", "50")]).matches}  # fmt: skip
    assert "not-recorded" in practitioners  # most reports name no authorizing person
    assert any("NOBODY" in p for p in practitioners)  # the two that do: "Nobody", as written


def test_a_file_import_gives_no_ae_title_and_claims_nothing_it_does_not_meet(
    store: Store, settings: Settings, service: Any
) -> None:
    build_ingestor(store, settings).ingest_file(SIEMENS_CT)
    [stored] = service.search("Device", []).matches
    device = orjson.loads(stored.body or b"{}")
    assert "profile" not in device.get("meta", {})  # no AE title known: the profile is not met


def test_validate_with_a_profile(api: Api) -> None:
    summary = json.loads((IG / "Observation-139.json").read_text())
    url = f"/fhir/Observation/$validate?profile={RDS_PROFILE}"
    good = api.post(url, summary).get_json()
    assert [i["severity"] for i in good["issue"]] == ["information"] or all(
        i["severity"] == "warning" for i in good["issue"])  # fmt: skip
    bad = api.post(
        url, {**summary, "code": {"coding": [{"system": "http://loinc.org", "code": "73569-6"}]}}
    )
    assert bad.status_code == 200
    assert any(i["severity"] == "error" and "Observation.code" in i.get("expression", [""])[0]
               for i in bad.get_json()["issue"])  # fmt: skip
    parameters = {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": summary}, {"name": "profile", "valueUri": RDS_PROFILE}]}  # fmt: skip
    assert api.post("/fhir/Observation/$validate", parameters).status_code == 200
    unknown = api.post("/fhir/Observation/$validate?profile=http://example.org/nope", summary)
    assert any(i["code"] == "not-supported" for i in unknown.get_json()["issue"])
