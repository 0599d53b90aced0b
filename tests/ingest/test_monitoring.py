"""Monitoring over the dose facts, on synthetic series built from a corpus report: the same
CT chest/abdomen/pelvis on one Siemens scanner over four months, its CTDIvol raised after a
given day (the drift), its DLP totals above the UK DRL (the median exceedance); and a second
scanner doing the same examination differently."""

from __future__ import annotations

import functools
import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from server.alerts.monitoring import run
from server.config import Settings
from server.fhir import FhirService
from server.fhir.validation import validate
from server.ingest import Ingestor, build_ingestor
from server.mappings import monitoring_table
from server.site import site_context
from server.site.tables import site_tables
from server.store.port import Store
from server.store.sqlite import SqliteStore
from tests.conftest import collection_folder, restore
from tests.dicom.conftest import CORPUS
from tests.ingest.test_drl_checks import _replace_text, _set_numeric

NOW = datetime(2026, 11, 26, 6, 30, tzinfo=UTC)
CHANGED = NOW - timedelta(days=30)  # the software update
SIEMENS = CORPUS / "openrem" / "CT-RDSR-Siemens_Flash-TAP-SS.dcm"
SETTINGS = {"drl_sets": "UKHSA GB 2022"}


def four_months(store: Store, settings: Settings) -> None:
    """One scanner's 24 chest/abdomen/pelvis CTs: 12 with CTDIvol 10 mGy and DLP 500 mGy·cm
    every 7 days from 3 August to 19 October 2026, 12 with 13 and 900 every 2 days from 31
    October; ingested with `settings` into `store`, which must hold nothing yet."""
    restore(store, _four_months_ingested(replace(settings, data_dir=Path())))


@functools.cache
def _four_months_ingested(settings: Settings) -> Path:
    """Ingested once in a test process for these settings (0.6 s of a core; twenty tests take
    a copy)."""
    folder = collection_folder("kerma-four-months-")
    store = SqliteStore(folder / "kerma.sqlite3")
    ingestor = build_ingestor(store, replace(settings, data_dir=folder))
    for data in _four_months():
        assert ingestor.ingest_bytes(data, "ct.dcm").status == "ingested"
    store.close()
    return store.path


@functools.cache
def _four_months() -> tuple[bytes, ...]:
    """Written once in a test process (half a second); each test's store ingests them."""
    template = dcmread(SIEMENS)
    series = ((range(115, 31, -7), 10.0, 500.0), (range(26, 2, -2), 13.0, 900.0))
    return tuple(_copy(template, NOW - timedelta(days=day, hours=2), ctdivol, dlp)
                 for days, ctdivol, dlp in series for day in days)  # fmt: skip


def _copy(
    template: Dataset,
    when: datetime,
    ctdivol_mgy: float,
    dlp_total_mgy_cm: float,
    patient_id: str | None = None,
) -> bytes:
    """The template as a study of `when` (of another patient if one is named)."""
    ds = template.copy()
    ds.StudyInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid()
    if patient_id:
        ds.PatientID = patient_id
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = when.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = when.strftime("%H%M%S")
    _set_datetimes(ds.ContentSequence, when)
    _set_numeric(ds.ContentSequence, "113830", ctdivol_mgy)
    _set_numeric(ds.ContentSequence, "113813", dlp_total_mgy_cm)
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def _set_datetimes(items: Any, when: datetime) -> None:
    for item in items:
        if item.ValueType == "DATETIME":
            item.DateTime = when.strftime("%Y%m%d%H%M%S+0000")
        if "ContentSequence" in item:
            _set_datetimes(item.ContentSequence, when)


def _series(
    ingestor: Ingestor,
    template: Dataset,
    days: range,
    ctdivol: float,
    dlp: float,
    patient_id: str | None = None,
) -> None:
    for day in days:
        data = _copy(template, NOW - timedelta(days=day, hours=2), ctdivol, dlp, patient_id)
        assert ingestor.ingest_bytes(data, "ct.dcm").status == "ingested"


@pytest.fixture
def scanner(store: Store, tmp_path: Path) -> tuple[Ingestor, Dataset]:
    """12 examinations in the 90 days before the update, 12 after it, CTDIvol 30 % up."""
    settings = Settings(data_dir=tmp_path, **SETTINGS)
    four_months(store, settings)
    return build_ingestor(store, settings), dcmread(SIEMENS)


def _run(service: FhirService, tmp_path: Path, repeated: bool = False) -> list[dict[str, Any]]:
    """The monitoring run at NOW; the patient rules only when asked (the scanner's
    examinations are all of the template's one patient)."""
    settings = Settings(data_dir=tmp_path, **SETTINGS)
    ctx = site_tables(service, settings).context(site_context(settings))
    table = monitoring_table() if repeated else replace(monitoring_table(), repeated=())
    created = run(service, ctx, table, NOW)
    return [orjson.loads(service.read(*ref.split("/")).body or b"") for ref in created]


DEVICE_NAME = "SIEMENS SOMATOM Definition Flash CTAWP00001"
CAP = "CT Chest/Abdomen/Pelvis w IV Contrast"
CAP_SEQUENCE = "CT acquisition: chest, abdomen and pelvis"  # its acquisition, classified


def _codes(issues: list[dict[str, Any]]) -> list[str]:
    return sorted(i["code"]["coding"][0]["code"] for i in issues)


def test_drift_and_median_above_the_drl(scanner: Any, service: FhirService, tmp_path: Path) -> None:
    found = _run(service, tmp_path)
    assert _codes(found) == ["median-above-drl"] + ["parameter-drift"] * 3
    drifts = {
        i["detail"].split("'")[1]: i for i in found if "drift" in i["code"]["coding"][0]["code"]
    }
    assert set(drifts) == {"TAP", "Monitoring", "PreMonitoring"}  # every protocol; kVp did not move
    assert drifts["TAP"]["detail"] == (
        f"CTDIvol of protocol 'TAP' ({CAP_SEQUENCE}) on {DEVICE_NAME} changed from 10 mGy (median of 12 "
        "events before 2026-10-27) to 13 mGy (median of 12 events since, until 2026-11-26); "
        "rank-sum test p = 1.9e-06"
    )
    [median] = [i for i in found if i["code"]["coding"][0]["code"] == "median-above-drl"]
    assert median["detail"] == (
        f"The median CT Dose Length Product Total of 20 examinations of {CAP} on {DEVICE_NAME} "
        "in the 90 days until 2026-11-26 is 900 mGy·cm, 1.36 times the UKHSA GB 2022 DRL of "
        "660 mGy·cm for Chest, abdomen, pelvis"
    )
    for issue in found:
        assert validate(issue) == [], issue
        [device] = issue["implicated"]
        assert device["reference"].startswith("Device/") and "patient" not in issue
        assert {
            "system": "https://kerma.example.org/fhir/CodeSystem/modality",
            "code": "CT",
        } in issue["meta"]["tag"]
    assert _run(service, tmp_path) == []  # raised once


def test_a_patient_with_repeated_examinations(
    store: Store, service: FhirService, tmp_path: Path
) -> None:
    """Three CTs of one patient within 28 days (mappings/monitoring.yaml's default rule); two
    were not enough, and a fourth raises the issue again with all four."""
    ingestor = build_ingestor(store, Settings(data_dir=tmp_path, **SETTINGS))
    template = dcmread(SIEMENS)
    _series(ingestor, template, range(60, 0, -30), 10.0, 500.0, "P-REPEAT")  # 60 and 30 days ago
    _series(ingestor, template, range(20, 10, -10), 10.0, 700.0, "P-REPEAT")  # 20 days ago
    assert _run(service, tmp_path, repeated=True) == []  # within 28 days: 30 is out, 20 alone
    _series(ingestor, template, range(10, 2, -4), 10.0, 600.0, "P-REPEAT")  # 10 and 6 days ago
    [issue] = _run(service, tmp_path, repeated=True)
    assert issue["code"]["coding"][0]["code"] == "repeated-examinations"
    assert issue["detail"] == (
        "3 examinations (CT) of this patient from 2026-11-06 to 2026-11-20: "
        "CT examinations within 28 days"
    )
    [patient] = [p for p in service.search("Patient", [("identifier", "P-REPEAT")]).matches]
    assert issue["patient"] == {"reference": f"Patient/{patient.rid}"}
    implicated = [i["reference"] for i in issue["implicated"]]
    summaries = service.search("Observation", [("code", "73569-6"), ("subject", f"Patient/{patient.rid}"),
                                               ("date", "ge2026-11-01"), ("_sort", "date")]).matches  # fmt: skip
    assert implicated == [f"Observation/{s.rid}" for s in summaries]
    assert validate(issue) == []
    assert _run(service, tmp_path, repeated=True) == []  # raised once
    _series(ingestor, template, range(1, 0, -1), 10.0, 600.0, "P-REPEAT")
    [again] = _run(service, tmp_path, repeated=True)
    assert len(again["implicated"]) == 4


def test_no_drift_without_enough_values_or_change(
    store: Store, service: FhirService, tmp_path: Path
) -> None:
    ingestor = build_ingestor(store, Settings(data_dir=tmp_path, **SETTINGS))
    template = dcmread(SIEMENS)
    _series(ingestor, template, range(80, 31, -7), 10.0, 500.0)  # 7 before the update
    _series(ingestor, template, range(26, 2, -2), 13.0, 500.0)  # 12 after
    assert _run(service, tmp_path) == []  # too few before
    _series(ingestor, template, range(88, 81, -1), 12.8, 500.0)
    assert _run(service, tmp_path) == []  # 14 before, median 11.4: 14 % less, within 15 %


def test_monitoring_issues_are_notified(
    scanner: Any, service: FhirService, tmp_path: Path, api: Any
) -> None:
    sub = {"resourceType": "Subscription", "status": "active", "reason": "drift",
           "criteria": "DetectedIssue?code=https://kerma.example.org/fhir/CodeSystem/dose-issue|parameter-drift",
           "channel": {"type": "email", "endpoint": "mailto:mpe@hospital.test"}}  # fmt: skip
    assert api.post("/fhir/Subscription", sub).status_code == 201
    _run(service, tmp_path)
    assert len(api.search("/fhir/Communication?status=preparation")) == 3


def test_duplicate_protocols_and_differences_between_devices(
    scanner: tuple[Ingestor, Dataset], api: Any
) -> None:
    ingestor, template = scanner
    other = template.copy()  # the same model, another scanner
    other.DeviceSerialNumber, other.StationName = "99999", "CT2"
    _replace_text(other.ContentSequence, "00001", "99999")  # observer serial
    _replace_text(other.ContentSequence, "73491", "99999")  # the events' irradiating device
    _replace_text(other.ContentSequence, "CTAWP00001", "CT2")
    _series(ingestor, other, range(40, 4, -3), 30.0, 1500.0)
    url = "/fhir/List/$protocol-review?days=200&kind="
    [duplicates] = [
        e["flag"]["text"]
        for e in api.get(url + "duplicate-protocols").get_json()["entry"]
        if DEVICE_NAME in e["flag"]["text"]
    ]
    assert duplicates == (
        f"'Monitoring' / 'PreMonitoring' on {DEVICE_NAME}: acquisition_type Stationary "
        "Acquisition, kvp_kv 120.0, exposure_mas 20.0, collimation_mm 10.0"
    )
    across = api.get(url + "across-devices").get_json()
    texts = {e["flag"]["text"] for e in across["entry"]}
    other_name = "SIEMENS SOMATOM Definition Flash CT2"
    assert texts == {
        f"{CAP_SEQUENCE}, median CTDIvol: {DEVICE_NAME} 11.5 mGy (n=24); {other_name} 30 mGy (n=12)",
        f"{CAP}, median DLP: {DEVICE_NAME} 700 mGy·cm (n=24); {other_name} 1500 mGy·cm (n=12)",
    }  # per acquisition (localizer and bolus tracking are none); kVp is the same on both
    assert validate(across) == []
    assert api.get(url + "nonsense").status_code == 400
    assert api.get("/fhir/List/$protocol-review?kind=across-devices&days=x").status_code == 400


def test_a_repeated_examinations_text_gives_each_sum_with_its_unit_and_level() -> None:
    from server.alerts.issues import repeated_examinations
    from server.dose.monitoring import Repeated, RepeatRule
    from server.fhir.mapping import Context

    rule = RepeatRule("CT over 2 Gy.cm in 28 days", ("CT",), 28, None, (("dlp_mgy_cm", 2000.0),))
    found = Repeated(rule, "Patient/p", ("Observation/a", "Observation/b"),
                     (("dlp_mgy_cm", 2412.5),), 1_790_000_000.0, 1_790_500_000.0)  # fmt: skip
    issue = repeated_examinations(found, datetime(2026, 12, 5, tzinfo=UTC), Context())
    assert issue["detail"] == (
        "2 examinations (CT) of this patient from 2026-09-21 to 2026-09-27; "
        "DLP 2412 mGy·cm (level 2000 mGy·cm): CT over 2 Gy.cm in 28 days"
    )
