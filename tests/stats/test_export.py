"""Exports of the dose facts: pseudonymised by default (keyed hashes, no names, no birth
dates), identified only for mpe/admin and audited, CSV streamed, XLSX readable."""

from __future__ import annotations

import csv
import io
import zipfile
from typing import Any

from server.auth.keys import site_key
from server.config import Settings
from server.fhir.pseudonymise import pseudonym
from tests.conftest import Api
from tests.stats.test_statistics import PERIOD


def _rows(answer: Any) -> list[dict[str, str]]:
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))


def test_a_pseudonymised_export(scanner: None, as_role: Any, settings: Settings) -> None:
    answer = as_role("viewer").get(f"/stats/export/study.csv?{PERIOD}")
    assert 'filename="kerma-studys-pseudonymised.csv"' in answer.headers["Content-Disposition"]
    rows = _rows(answer)
    assert len(rows) == 24
    assert "patient_id" not in rows[0] and "study_instance_uid" not in rows[0]
    assert {r["dlp_mgy_cm"] for r in rows} == {"500.0", "900.0"}
    assert {r["device_name"] for r in rows} == {"SIEMENS SOMATOM Definition Flash CTAWP00001"}
    text = answer.get_data(as_text=True)
    assert "1.3.6.1.4.1.5962" not in text  # no Study UID, no study key
    assert not any("birth" in column or column in ("patient", "name") for column in rows[0])
    assert rows[0]["age_years"] == "" or float(rows[0]["age_years"]) >= 0  # age, not birth date
    [patient] = as_role("mpe").search("/fhir/Patient")
    expected = pseudonym(site_key(settings), f"Patient/{patient['id']}")
    assert {r["patient_pseudonym"] for r in rows} == {expected}  # the same patient throughout
    assert len({r["study_pseudonym"] for r in rows}) == 24
    assert rows[0]["date"] == "2026-08-03"  # in date order, in the site's time zone, no time
    assert (settings.data_dir / "pseudonym.key").stat().st_mode & 0o077 == 0


def test_identified_exports_are_for_mpe_and_admin_and_audited(
    scanner: None, as_role: Any, api: Api
) -> None:
    url = f"/stats/export/event.csv?identified=true&{PERIOD}"
    assert as_role("viewer").get(url).status_code == 403
    assert as_role("authority").get(f"/stats/export/study.csv?{PERIOD}").status_code == 403
    rows = _rows(api.get(url))
    assert len(rows) == 24 * 4  # four events per examination
    assert {r["patient_id"] for r in rows} == {"123456"}
    assert len({r["study_instance_uid"] for r in rows}) == 24
    audit = as_role("admin").search("/fhir/AuditEvent?_count=100")
    assert any(
        e["entity"][-1]["description"].startswith("GET /stats/export/event.csv") for e in audit
    )


def test_an_xlsx_export(scanner: None, api: Api) -> None:
    answer = api.get(f"/stats/export/study.xlsx?modality=CT&{PERIOD}")
    assert answer.status_code == 200
    book = zipfile.ZipFile(io.BytesIO(answer.data))
    sheet = book.read("xl/worksheets/sheet1.xml").decode()
    assert sheet.count("<row ") == 25  # the header and 24 examinations
    assert "patient_pseudonym" in sheet and "SOMATOM" in sheet
    assert api.get("/stats/export/patients.csv").status_code == 404


def test_same_pseudonym_for_the_same_key() -> None:
    assert (
        pseudonym(b"k", "Patient/1")
        == pseudonym(b"k", "Patient/1")
        != pseudonym(b"k2", "Patient/1")
    )


def test_an_export_as_a_job(scanner: None, api: Api, as_role: Any) -> None:
    import time

    started = api.post(f"/stats/export/study.xlsx?identified=true&{PERIOD}", {})
    assert started.status_code == 202
    task_url = "/fhir" + started.headers["Content-Location"].split("/fhir", 1)[1]
    deadline = time.monotonic() + 60
    while (task := api.get(task_url).get_json())["status"] in ("requested", "in-progress"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert task["status"] == "completed", task
    [output] = task["output"]
    assert output["type"]["text"] == "file"
    url = "/fhir/" + output["valueString"]
    answer = api.get(url)
    assert answer.status_code == 200
    sheet = zipfile.ZipFile(io.BytesIO(answer.data)).read("xl/worksheets/sheet1.xml").decode()
    assert sheet.count("<row ") == 25 and "123456" in sheet  # identified: the patient's ID
    assert as_role("viewer").get(url).status_code == 403  # the export is the mpe's
    assert (
        as_role("viewer").post(f"/stats/export/study.xlsx?identified=true&{PERIOD}", {}).status_code
        == 403
    )
