"""Exports of the dose facts: pseudonymised by default (keyed hashes, no names, no birth
dates), identified only for mpe/admin and audited, CSV streamed, XLSX readable."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import datetime
from typing import Any

import openpyxl

from server.app import create_app
from server.auth.keys import site_key
from server.config import Settings
from server.fhir.pseudonymise import pseudonym
from server.store.port import Store
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
    """Read back with openpyxl, as a spreadsheet user's tools read it."""
    answer = api.get(f"/stats/export/study.xlsx?modality=CT&{PERIOD}")
    assert answer.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(answer.data))
    assert book.sheetnames == ["read me", "CT"]
    sheet = book["CT"]
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == 25  # the header and 24 examinations
    header = list(rows[0])
    assert header == list(next(csv.reader(io.StringIO(
        api.get(f"/stats/export/study.csv?modality=CT&{PERIOD}").get_data(as_text=True)))))  # fmt: skip
    first = dict(zip(header, rows[1], strict=True))
    assert first["date"] == datetime(2026, 8, 3)  # a date, to the day (pseudonymised)
    assert sheet.cell(2, header.index("date") + 1).number_format == "yyyy-mm-dd"
    assert first["dlp_mgy_cm"] == 500 and "SOMATOM" in first["device_name"]
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == f"A1:{_column(len(header))}25"
    assert sheet.column_dimensions["A"].width > 20  # the pseudonyms fit
    read_me = {r[0]: r[1:] for r in book["read me"].iter_rows(values_only=True) if r and r[0]}
    assert read_me["dlp_mgy_cm"][0] == "mGy·cm" and "DLP" in read_me["dlp_mgy_cm"][1]
    assert "ages in whole years" in read_me["pseudonymised"][0]
    assert all(column in read_me for column in header)  # every column explained
    assert api.get("/stats/export/patients.csv").status_code == 404


def _column(n: int) -> str:
    """The spreadsheet letter of the n-th column (1: A, 27: AA)."""
    return ("" if n <= 26 else chr(64 + (n - 1) // 26)) + chr(65 + (n - 1) % 26)


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
    sheet = openpyxl.load_workbook(io.BytesIO(answer.data))["CT"]
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == 25 and rows[1][rows[0].index("patient_id")] == "123456"  # identified
    [first] = _rows(api.get(f"/stats/export/study.csv?identified=true&{PERIOD}"))[:1]
    when = datetime.fromisoformat(first["date"])  # to the second, in the site's time zone
    assert rows[1][rows[0].index("date")] == when.replace(tzinfo=None)
    assert as_role("viewer").get(url).status_code == 403  # the export is the mpe's
    assert (
        as_role("viewer").post(f"/stats/export/study.xlsx?identified=true&{PERIOD}", {}).status_code
        == 403
    )


def test_the_protocol_names_are_kept_only_where_the_site_says(
    scanner: None, settings: Settings, store: Store, tokens: dict[str, str], api: Api
) -> None:
    """PS3.15 removes protocol names (free text): a pseudonymised export leaves them out,
    unless KERMA_PSEUDONYM_DESCRIPTIONS=keep; the identified export has them."""
    url = f"/stats/export/event.csv?{PERIOD}"
    protocols = {r["protocol"] for r in _rows(api.get(f"{url}&identified=true"))}
    assert len(protocols - {""}) >= 2  # the Siemens acquisitions' protocols
    assert {r["protocol"] for r in _rows(api.get(url))} == {""}
    keep = replace(settings, pseudonym_descriptions="keep")
    kept = Api(create_app(keep, store).test_client(), tokens["mpe"])
    assert {r["protocol"] for r in _rows(kept.get(url))} == protocols
