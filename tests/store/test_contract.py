"""The store contract: the same behaviour, query for query, on every adapter."""

from __future__ import annotations

import math
import time
from typing import Any

import orjson
import pytest

from server.fhir import FhirError, FhirService
from server.site import build_service
from server.store.port import Duplicate, Store, User, VersionConflict, Write

DCM = "http://dicom.nema.org/resources/ontology/DCM"
UCUM = "http://unitsofmeasure.org"


def _patient(rid: str, family: str, given: str, birth: str, pid: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": rid,
        "identifier": [{"system": "urn:pid", "value": pid}],
        "name": [{"family": family, "given": [given]}],
        "birthDate": birth,
        "gender": "female",
    }


def _event(
    rid: str, patient: str, device: str, when: str, ctdivol_mgy: float, dlp_mgy_cm: float
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"coding": [{"system": DCM, "code": "113852", "display": "Irradiation Event"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "device": {"reference": f"Device/{device}"},
        "effectiveDateTime": when,
        "component": [
            {
                "code": {"coding": [{"system": DCM, "code": "113830"}]},
                "valueQuantity": {
                    "value": ctdivol_mgy,
                    "system": UCUM,
                    "code": "mGy",
                    "unit": "mGy",
                },
            },
            {
                "code": {"coding": [{"system": DCM, "code": "113838"}]},
                "valueQuantity": {
                    "value": dlp_mgy_cm,
                    "system": UCUM,
                    "code": "mGy.cm",
                    "unit": "mGy.cm",
                },
            },
        ],
    }


@pytest.fixture
def fhir(any_store: Store) -> FhirService:
    svc = build_service(any_store)
    svc.update("Patient", "p1", _patient("p1", "Müller", "Zoë", "1970-05-01", "PAT1"))
    svc.update("Patient", "p2", _patient("p2", "Muller-Smith", "Ann", "1985-11-20", "PAT2"))
    svc.update("Patient", "p3", _patient("p3", "Okafor", "Chi", "2010-01-02", "PAT3"))
    svc.update(
        "Device",
        "ct1",
        {
            "resourceType": "Device",
            "id": "ct1",
            "manufacturer": "Siemens",
            "modelNumber": "Definition Flash",
        },
    )
    svc.update(
        "Device",
        "ct2",
        {"resourceType": "Device", "id": "ct2", "manufacturer": "GE", "modelNumber": "Revolution"},
    )
    events = [
        ("e1", "p1", "ct1", "2024-01-15T10:00:00Z", 12.5, 450.0),
        ("e2", "p1", "ct1", "2024-02-10T09:30:00Z", 60.0, 1200.0),
        ("e3", "p2", "ct2", "2024-02-20T14:00:00+01:00", 8.0, 310.0),
        ("e4", "p3", "ct2", "2024-03-05", 3.2, 95.5),
    ]
    for rid, patient, device, when, ctdi, dlp in events:
        svc.update("Observation", rid, _event(rid, patient, device, when, ctdi, dlp))
    return svc


def ids(svc: FhirService, rtype: str, query: str) -> list[str]:
    pairs = [tuple(p.split("=", 1)) for p in query.split("&")] if query else []
    result = svc.search(rtype, pairs)  # type: ignore[arg-type]
    return sorted(s.rid for s in result.matches)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("code=113852", ["e1", "e2", "e3", "e4"]),
        (f"code={DCM}|113852", ["e1", "e2", "e3", "e4"]),
        ("code=|113852", []),
        ("code=http://loinc.org|113852", []),
        ("patient=p1", ["e1", "e2"]),
        ("patient=Patient/p2,Patient/p3", ["e3", "e4"]),
        ("device=ct2", ["e3", "e4"]),
        ("date=2024-02", ["e2", "e3"]),
        ("date=ge2024-02-10T09:30:00Z", ["e2", "e3", "e4"]),
        ("date=gt2024-02-20", ["e4"]),
        ("date=lt2024-02-20T13:00:00Z", ["e1", "e2"]),
        ("date=le2024-01-15", ["e1"]),
        ("date=ge2024-02&date=lt2024-03", ["e2", "e3"]),
        ("date=sa2024-02-20", ["e4"]),
        ("date=eb2024-01-16", ["e1"]),
        ("date=ne2024-02", ["e1", "e4"]),
        ("component-code-value-quantity=113830$gt10", ["e1", "e2"]),
        (f"component-code-value-quantity={DCM}|113838$ge1.2|{UCUM}|Gy.cm", ["e2"]),
        (f"component-code-value-quantity={DCM}|113830$lt0.01|{UCUM}|Gy", ["e3", "e4"]),
        ("component-value-quantity=95.5", ["e4"]),
        ("component-value-quantity=ap100", ["e4"]),
        ("subject:Patient.identifier=PAT1", ["e1", "e2"]),
        ("patient.name=okafor", ["e4"]),
        ("patient.birthdate=lt1980", ["e1", "e2"]),
        ("device.manufacturer=siem", ["e1", "e2"]),
        ("_id=e1,e3", ["e1", "e3"]),
        ("patient=p1&_id=e1,e3", ["e1"]),
        ("_id=e1,e2,e3&patient=p1", ["e1", "e2"]),
        ("value-quantity:missing=true", ["e1", "e2", "e3", "e4"]),
        ("device:missing=false", ["e1", "e2", "e3", "e4"]),
        ("code:not=113852", []),
    ],
)
def test_observation_search(fhir: FhirService, query: str, expected: list[str]) -> None:
    assert ids(fhir, "Observation", query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("name=muller", ["p1", "p2"]),
        ("name=MÜLLER", ["p1", "p2"]),
        ("family:exact=Müller", ["p1"]),
        ("family:exact=müller", []),
        ("name:contains=smi", ["p2"]),
        ("given=zoe", ["p1"]),
        ("identifier=urn:pid|PAT2", ["p2"]),
        ("identifier=PAT3", ["p3"]),
        ("birthdate=ge1980&birthdate=lt2000", ["p2"]),
        ("gender=female", ["p1", "p2", "p3"]),
        ("_has:Observation:patient:code=113852", None),
    ],
)
def test_patient_search(fhir: FhirService, query: str, expected: list[str] | None) -> None:
    if expected is None:  # not implemented: must be refused, not ignored
        with pytest.raises(FhirError) as e:
            ids(fhir, "Patient", query)
        assert e.value.status == 400
        return
    assert ids(fhir, "Patient", query) == expected


def test_sort_paging_and_total(fhir: FhirService) -> None:
    result = fhir.search("Observation", [("_sort", "-date"), ("_count", "3")])
    assert [s.rid for s in result.matches] == ["e4", "e3", "e2"]
    assert result.total == 4
    page2 = fhir.search("Observation", [("_sort", "-date"), ("_count", "3"), ("_offset", "3")])
    assert [s.rid for s in page2.matches] == ["e1"]
    by_name = fhir.search("Patient", [("_sort", "family,-birthdate")])
    assert [s.rid for s in by_name.matches] == ["p1", "p2", "p3"]
    assert fhir.search("Observation", [("_total", "none")]).total is None
    assert fhir.search("Observation", [("_summary", "count")]).matches == []


def test_include_and_revinclude(fhir: FhirService) -> None:
    result = fhir.search(
        "Observation",
        [("_id", "e1"), ("_include", "Observation:patient"), ("_include", "Observation:device")],
    )
    assert sorted((s.rtype, s.rid) for s in result.included) == [
        ("Device", "ct1"),
        ("Patient", "p1"),
    ]
    rev = fhir.search("Patient", [("_id", "p1"), ("_revinclude", "Observation:patient")])
    assert sorted(s.rid for s in rev.included) == ["e1", "e2"]


def test_versions_history_and_delete(fhir: FhirService) -> None:
    body = orjson.loads(fhir.read("Device", "ct1").body or b"")
    fhir.update("Device", "ct1", {**body, "manufacturer": "Siemens Healthineers"}, if_match='W/"1"')
    assert fhir.read("Device", "ct1").version == 2
    assert orjson.loads(fhir.vread("Device", "ct1", "1").body or b"")["manufacturer"] == "Siemens"
    assert ids(fhir, "Device", "manufacturer=healthineers") == []
    assert ids(fhir, "Device", "manufacturer=siemens") == ["ct1"]
    with pytest.raises(FhirError) as stale:
        fhir.update("Device", "ct1", body, if_match='W/"1"')
    assert stale.value.status == 412
    fhir.delete("Device", "ct1")
    with pytest.raises(FhirError) as gone:
        fhir.read("Device", "ct1")
    assert gone.value.status == 410
    assert ids(fhir, "Device", "manufacturer=siemens") == []
    versions, total, _, _ = fhir.history("Device", "ct1", [])
    assert total == 3 and [v.method for v in versions] == ["DELETE", "PUT", "PUT"]
    _, type_total, _, _ = fhir.history("Observation", None, [])
    assert type_total == 4


def test_last_updated_search(fhir: FhirService) -> None:
    time.sleep(0.01)
    cut = time.time()
    time.sleep(0.01)
    body = orjson.loads(fhir.read("Patient", "p3").body or b"")
    fhir.update("Patient", "p3", {**body, "gender": "other"})
    from server.fhir.values import instant

    assert ids(fhir, "Patient", f"_lastUpdated=gt{instant(cut)}") == ["p3"]
    assert ids(fhir, "Patient", f"gender=other&_lastUpdated=gt{instant(cut)}") == ["p3"]
    assert ids(fhir, "Patient", f"gender=female&_lastUpdated=gt{instant(cut)}") == []


def test_transaction_is_all_or_nothing(any_store: Store) -> None:
    svc = build_service(any_store)
    with pytest.raises(RuntimeError), svc.store.transaction() as tx:
        svc.create_in(tx, "Patient", _patient("x", "Rollback", "A", "1990", "R1"), rid="r1")
        raise RuntimeError("boom")
    assert any_store.read("Patient", "r1") is None
    assert ids(svc, "Patient", "identifier=R1") == []


def test_version_conflict_is_detected(any_store: Store) -> None:
    write = Write(
        "Device", "d", 1, time.time(), "POST", b'{"resourceType":"Device","id":"d"}', None
    )
    with any_store.transaction() as tx:
        tx.write(write)
    with pytest.raises(VersionConflict), any_store.transaction() as tx:
        tx.write(write)
    assert any_store.read("Device", "d").version == 1  # type: ignore[union-attr]


def test_users(any_store: Store) -> None:
    user = User("ann", "mpe", "h1", time.time(), ("Device/ct1",))
    any_store.add_user(user)
    with pytest.raises(Duplicate):
        any_store.add_user(User("ann", "viewer", "h2", time.time()))
    assert any_store.user_by_token("h1") == user
    assert any_store.user_by_token("nope") is None
    assert any_store.set_user_active("ann", False)
    assert not any_store.user_by_token("h1").active  # type: ignore[union-attr]
    assert not any_store.set_user_active("bob", False)
    assert [u.name for u in any_store.users()] == ["ann"]
    assert any_store.set_password("ann", "$argon2id$x") and not any_store.set_password("bob", "y")
    assert any_store.user_by_name("ann").password_hash == "$argon2id$x"  # type: ignore[union-attr]
    assert any_store.set_token_hash("ann", "h3") and not any_store.set_token_hash("bob", "h4")
    assert any_store.user_by_token("h1") is None and any_store.user_by_token("h3").name == "ann"  # type: ignore[union-attr]


def test_failed_sign_ins(any_store: Store) -> None:
    now = time.time()
    for at in (now - 90000, now - 600, now - 10):  # the first is older than a day: pruned
        any_store.record_failed_sign_in("ann", at)
    any_store.record_failed_sign_in("10.0.0.7", now)
    assert any_store.failed_sign_ins("ann", now - 86400 * 2) == 2
    assert any_store.failed_sign_ins("ann", now - 60) == 1
    any_store.clear_failed_sign_ins("ann")
    assert any_store.failed_sign_ins("ann", 0) == 0
    assert any_store.failed_sign_ins("10.0.0.7", 0) == 1


@pytest.fixture
def dose_world(any_store: Store) -> FhirService:
    """A study, its dose Observations, the scanner and a DRL alert, as a consumer queries them."""
    svc = build_service(any_store)
    svc.update("Patient", "p1", _patient("p1", "Doe", "Ann", "1960-01-01", "PAT1"))
    svc.update(
        "Device",
        "ct1",
        {
            "resourceType": "Device",
            "id": "ct1",
            "manufacturer": "Siemens",
            "modelNumber": "SOMATOM Force",
            "identifier": [
                {
                    "type": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                "code": "SNO",
                            }
                        ]
                    },
                    "value": "75412",
                }
            ],
            "type": {"coding": [{"system": DCM, "code": "CT"}]},
        },
    )
    svc.update(
        "ImagingStudy",
        "s1",
        {
            "resourceType": "ImagingStudy",
            "id": "s1",
            "status": "available",
            "subject": {"reference": "Patient/p1"},
            "identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.3.4"}],
            "started": "2024-05-02T08:15:00Z",
            "endpoint": [{"reference": "Endpoint/pacs"}],
            "series": [
                {"uid": "1.2.3.4.1", "modality": {"system": DCM, "code": "CT"}},
                {"uid": "1.2.3.4.2", "modality": {"system": DCM, "code": "SR"}},
            ],
        },
    )
    summary = {
        "resourceType": "Observation",
        "id": "rds1",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "imaging",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "73569-6"}]},
        "identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.3.4.2.1"}],
        "subject": {"reference": "Patient/p1"},
        "partOf": [{"reference": "ImagingStudy/s1"}],
        "focus": [{"reference": "ImagingStudy/s1"}],
        "device": {"reference": "Device/ct1"},
        "effectiveDateTime": "2024-05-02T08:15:00Z",
        "valueString": "CT DLP total 512 mGy.cm",
    }
    event = {
        **_event("ev1", "p1", "ct1", "2024-05-02T08:16:00Z", 14.1, 512.0),
        "derivedFrom": [{"reference": "Observation/rds1"}],
        "status": "preliminary",
        "valueQuantity": {"value": 14.1, "system": UCUM, "code": "mGy"},
    }
    svc.update("Observation", "rds1", summary)
    svc.update("Observation", "ev1", event)
    svc.update(
        "DetectedIssue",
        "di1",
        {
            "resourceType": "DetectedIssue",
            "id": "di1",
            "status": "final",
            "severity": "high",
            "code": {
                "coding": [{"system": "https://kerma.example.org/alert", "code": "drl-exceeded"}]
            },
            "patient": {"reference": "Patient/p1"},
            "identifiedDateTime": "2024-05-02T09:00:00Z",
            "implicated": [{"reference": "Observation/ev1"}],
        },
    )
    return svc


@pytest.mark.parametrize(
    ("rtype", "query", "expected"),
    [
        ("ImagingStudy", "identifier=urn:dicom:uid|urn:oid:1.2.3.4", ["s1"]),
        ("ImagingStudy", f"modality={DCM}|SR", ["s1"]),
        ("ImagingStudy", "modality=MR", []),
        ("ImagingStudy", "started=2024-05-02", ["s1"]),
        ("ImagingStudy", "started=lt2024-05-01", []),
        ("ImagingStudy", "patient=p1&endpoint=Endpoint/pacs", ["s1"]),
        ("ImagingStudy", "series=1.2.3.4.2", ["s1"]),
        ("Device", "identifier=75412", ["ct1"]),
        (
            "Device",
            "identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|SNO|75412",
            ["ct1"],
        ),
        ("Device", f"type={DCM}|CT", ["ct1"]),
        ("Device", "model=somatom", ["ct1"]),
        ("Device", "manufacturer:exact=Siemens", ["ct1"]),
        ("DetectedIssue", "patient=p1&code=drl-exceeded", ["di1"]),
        ("DetectedIssue", "identified=ge2024-05-02T08:30:00Z", ["di1"]),
        ("DetectedIssue", "implicated=Observation/ev1", ["di1"]),
        ("DetectedIssue", "implicated=Observation/rds1", []),
        ("Observation", "category=imaging", ["rds1"]),
        ("Observation", "status=preliminary", ["ev1"]),
        ("Observation", "status:not=preliminary", ["rds1"]),
        ("Observation", "derived-from=Observation/rds1", ["ev1"]),
        ("Observation", "focus=ImagingStudy/s1", ["rds1"]),
        ("Observation", "part-of=s1", ["rds1"]),
        ("Observation", "part-of:ImagingStudy.identifier=urn:oid:1.2.3.4", ["rds1"]),
        ("Observation", "identifier=urn:dicom:uid|urn:oid:1.2.3.4.2.1", ["rds1"]),
        ("Observation", "value-quantity=ge14|http://unitsofmeasure.org|mGy", ["ev1"]),
        ("Observation", "value-quantity=ne14.1", []),
        ("Observation", "value-quantity=lt0.02|http://unitsofmeasure.org|Gy", ["ev1"]),
        ("Observation", "value-string=ct dlp", ["rds1"]),
        (
            "Observation",
            "code=73569-6&device.manufacturer=siemens&patient.identifier=PAT1",
            ["rds1"],
        ),
    ],
)
def test_dose_consumer_searches(
    dose_world: FhirService, rtype: str, query: str, expected: list[str]
) -> None:
    assert ids(dose_world, rtype, query) == expected


def test_dose_facts_replace_per_study_and_roll_back(any_store: Store) -> None:
    from server.dose.facts import DoseFact

    one = DoseFact(
        "event:s1:e1", "event", "s1", "Observation/e1", "CT", ctdivol_mgy=12.5, date=1.7e9
    )
    two = DoseFact("study:s1", "study", "s1", "Observation/r1", "CT", dlp_mgy_cm=400.0, events=1)
    other = DoseFact("study:s2", "study", "s2", "Observation/r2", "DX", dap_gy_m2=1.2e-5)
    with any_store.transaction() as tx:
        tx.replace_facts("s1", [one, two])
        tx.replace_facts("s2", [other])
    assert any_store.facts("s1") == [one, two]
    with any_store.transaction() as tx:
        tx.replace_facts("s1", [two])
    assert any_store.facts() == [two, other]
    with pytest.raises(RuntimeError), any_store.transaction() as tx:
        tx.replace_facts("s2", [])
        raise RuntimeError("boom")
    assert any_store.facts("s2") == [other]


def test_recent_studies_of_a_device_and_procedure(any_store: Store) -> None:
    from server.dose.facts import DoseFact

    def row(
        uid: str, date: float, device: str = "Device/ct1", procedure: str = "CT Chest"
    ) -> DoseFact:
        return DoseFact(f"study:{uid}", "study", uid, f"Observation/{uid}", "CT",
                        device=device, procedure=procedure, date=date, dlp_mgy_cm=300.0)  # fmt: skip

    rows = [row("a", 1.0), row("b", 3.0), row("c", 2.0), row("d", 4.0, device="Device/ct2"),
            row("e", 5.0, procedure="CT Head")]  # fmt: skip
    event = DoseFact("event:a:1", "event", "a", "Observation/e", "CT", device="Device/ct1",
                     procedure="CT Chest", date=9.0)  # fmt: skip
    with any_store.transaction() as tx:
        for r in rows:
            tx.replace_facts(r.study_uid, [r] + ([event] if r.study_uid == "a" else []))
    newest = any_store.recent_studies("Device/ct1", "CT Chest", 10.0, 2)
    assert [r.study_uid for r in newest] == ["b", "c"]
    assert [r.study_uid for r in any_store.recent_studies("Device/ct1", "CT Chest", 2.0, 20)] == [
        "c",
        "a",
    ]


def test_fact_columns_of_a_level_and_period(any_store: Store) -> None:
    from server.dose.facts import DoseFact

    rows = [
        DoseFact("study:a", "study", "a", "Observation/a", "CT", date=1.0, dlp_mgy_cm=100.0, device="Device/x"),
        DoseFact("study:b", "study", "b", "Observation/b", "CT", date=2.0, dlp_mgy_cm=200.0),
        DoseFact("study:c", "study", "c", "Observation/c", "DX", date=3.0, dap_gy_m2=1e-5),
        DoseFact("event:a:1", "event", "a", "Observation/e", "CT", date=1.0, ctdivol_mgy=9.0),
        DoseFact("study:d", "study", "d", "Observation/d", "CT", dlp_mgy_cm=400.0),  # no date
    ]  # fmt: skip
    with any_store.transaction() as tx:
        for uid in "abcd":
            tx.replace_facts(uid, [r for r in rows if r.study_uid == uid])
    found = any_store.fact_columns("study", ["study_uid", "dlp_mgy_cm", "device"], 1.0, 3.0)
    assert sorted(zip(*found.values(), strict=True)) == [
        ("a", 100.0, "Device/x"),
        ("b", 200.0, None),
    ]
    assert any_store.fact_columns("event", ["ctdivol_mgy"], 0.0, 10.0) == {"ctdivol_mgy": [9.0]}
    assert any_store.fact_columns("study", ["modality"], 5.0, 9.0) == {"modality": []}
    # any time at all: the undated rows too
    every = any_store.fact_columns("study", ["study_uid", "date"], -math.inf, math.inf)
    assert sorted(zip(*every.values(), strict=True)) == [
        ("a", 1.0),
        ("b", 2.0),
        ("c", 3.0),
        ("d", None),
    ]
    assert "d" not in any_store.fact_columns("study", ["study_uid"], -math.inf, 1e12)["study_uid"]
    with pytest.raises(ValueError, match="no dose-fact field"):
        any_store.fact_columns("study", ["modality; DROP TABLE dose_fact"], 0.0, 9.0)


def test_fact_column_batches_give_every_row_of_a_level(any_store: Store) -> None:
    from server.dose.facts import DoseFact

    with any_store.transaction() as tx:
        for n in range(7):
            uid = f"s{n}"
            date = None if n == 3 else float(n)  # undated rows come too
            tx.replace_facts(uid, [DoseFact(f"study:{uid}", "study", uid, f"Observation/{uid}", "CT",
                                            date=date, dlp_mgy_cm=10.0 * n)])  # fmt: skip
    batches = list(any_store.fact_column_batches("study", ["study_uid", "dlp_mgy_cm", "date"], 3))
    assert [len(b["study_uid"]) for b in batches] == [3, 3, 1]
    rows = sorted(row for b in batches for row in zip(*b.values(), strict=True))
    assert rows == [(f"s{n}", 10.0 * n, None if n == 3 else float(n)) for n in range(7)]
    assert list(any_store.fact_column_batches("event", ["study_uid"], 3)) == []


def test_fact_changes_name_the_studies_written_since(any_store: Store) -> None:
    from server.dose.facts import DoseFact

    def row(uid: str, value: float) -> DoseFact:
        return DoseFact(
            f"study:{uid}", "study", uid, f"Observation/{uid}", "CT", date=1.0, dlp_mgy_cm=value
        )

    assert any_store.fact_version() == 0
    with any_store.transaction() as tx:
        tx.replace_facts("a", [row("a", 1.0)])
        tx.replace_facts("b", [row("b", 2.0)])
    first = any_store.fact_version()
    assert first >= 2 and any_store.fact_changes(0) == (first, ["a", "b"])
    with any_store.transaction() as tx:
        tx.replace_facts("b", [row("b", 3.0)])
        tx.replace_facts("c", [])
    latest, changed = any_store.fact_changes(first)
    assert latest > first and changed == ["b", "c"]
    assert any_store.fact_changes(latest) == (latest, [])
    only_b = any_store.fact_columns(
        "study", ["study_uid", "dlp_mgy_cm"], float("-inf"), float("inf"), ["b"]
    )
    assert only_b == {"study_uid": ["b"], "dlp_mgy_cm": [3.0]}


def test_fact_rows_stream_in_date_order(any_store: Store) -> None:
    from server.dose.facts import DoseFact

    with any_store.transaction() as tx:
        for n, date in enumerate((3.0, 1.0, 2.0, 9.0)):
            uid = f"s{n}"
            tx.replace_facts(
                uid,
                [
                    DoseFact(
                        f"study:{uid}",
                        "study",
                        uid,
                        f"Observation/{n}",
                        "CT",
                        date=date,
                        dlp_mgy_cm=float(n),
                    )
                ],
            )
    rows = any_store.fact_rows("study", ["study_uid", "dlp_mgy_cm"], 0.0, 5.0)
    assert list(rows) == [("s1", 1.0), ("s2", 2.0), ("s0", 0.0)]
