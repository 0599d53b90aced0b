"""Implausible demographics as a stage of reading: a placeholder birth date (9999-01-01) is not
used, the Patient Age the modality sent stands in, and the study is flagged with the reason on
the API (the summary's note and quality tag) and in the console; the dose is stored as sent."""

from __future__ import annotations

import io

import orjson
from flask.testing import FlaskClient
from pydicom import dcmread

from server.auth.passwords import set_password
from server.auth.users import add_user
from server.config import Settings
from server.ingest import build_ingestor
from server.site import build_service
from server.store.port import Store
from tests.console.conftest import PASSWORD, sign_in, text
from tests.dicom.conftest import SIEMENS_CT

QUALITY = "https://kerma.example.org/fhir/CodeSystem/dose-quality|plausibility-warning"


def _ingest(store: Store, settings: Settings, **header: str) -> str:
    ds = dcmread(SIEMENS_CT)
    for keyword, value in header.items():
        setattr(ds, keyword, value)
    data = io.BytesIO()
    ds.save_as(data)
    result = build_ingestor(store, settings).ingest_bytes(data.getvalue(), "ct.dcm")
    assert result.status == "ingested" and result.study, result
    return result.study


def test_a_placeholder_birth_date(store: Store, settings: Settings, client: FlaskClient) -> None:
    study = _ingest(store, settings, PatientBirthDate="99990101", PatientAge="63Y")
    service = build_service(store)
    [summary] = service.search("Observation", [("part-of", study), ("_tag", QUALITY)]).matches
    notes = [n["text"] for n in orjson.loads(summary.body or b"{}")["note"]]
    assert any("implausible-age" in n and "birth date 9999-01-01 gives an age of" in n
               and "Patient Age (63 years) used instead" in n for n in notes), notes  # fmt: skip
    patient_ref = orjson.loads(summary.body or b"{}")["subject"]["reference"]
    patient = orjson.loads(service.read(*patient_ref.split("/")).body or b"{}")
    assert "birthDate" not in patient
    uid = dcmread(SIEMENS_CT).StudyInstanceUID
    [fact] = [f for f in store.facts(uid) if f.level == "study"]
    assert fact.age_years == 63.0 and fact.dlp_mgy_cm is not None  # the dose as sent

    add_user(store, "marie", "mpe")
    set_password(store, "marie", PASSWORD)
    sign_in(client, "marie")
    page = text(client.get(f"/studies/{study.split('/')[1]}").get_data(as_text=True))
    assert "The checks of this report found:" in page and "implausible-age" in page
