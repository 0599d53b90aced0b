"""The national DRL survey: a Bundle of valid MeasureReports and a PDF with the same numbers,
for the authority role too (aggregates only)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from server.config import Settings
from server.fhir.validation import validate
from tests.conftest import Api
from tests.reports.test_department import DEVICE, PERIOD, archived, text_of


def test_the_survey_as_a_bundle_and_a_pdf(site: Api, as_role: Any) -> None:
    answer = as_role("authority").get(f"/stats/survey.json?{PERIOD}")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    bundle = answer.get_json()
    assert validate(bundle) == []
    reports = {e["resource"]["measure"].rsplit("/", 1)[1]: e["resource"] for e in bundle["entry"]
               if e["resource"]["resourceType"] == "MeasureReport"}  # fmt: skip
    # readable without Kerma: the Device each stratum names is in the Bundle, at its full URL
    devices = {e["fullUrl"]: e["resource"] for e in bundle["entry"]
               if e["resource"]["resourceType"] == "Device"}  # fmt: skip
    [(device_url, device)] = devices.items()
    assert device_url == f"http://kerma.test/fhir/Device/{device['id']}"
    assert device["deviceName"] == [
        {"name": "SIEMENS", "type": "manufacturer-name"},
        {"name": "SOMATOM Definition Flash", "type": "model-name"},
    ]
    assert "identifier" not in device and "serialNumber" not in device  # PS3.15: no device IDs
    # CT only, so no DAP or AGD; the Siemens reports carry the patient's weight
    assert set(reports) == {
        "dose-ctdivol-mgy-event",
        "dose-dlp-mgy-cm-study",
        "dose-weight-kg-study",
    }
    [weight] = reports["dose-weight-kg-study"]["group"][0]["stratifier"][0]["stratum"]
    assert weight["population"][0]["count"] == 24 and weight["measureScore"]["unit"] == "kg"
    dlp = reports["dose-dlp-mgy-cm-study"]["group"][0]["stratifier"][0]
    assert dlp["code"] == [{"text": "procedure"}, {"text": "device"}]
    [stratum] = dlp["stratum"]
    assert stratum["component"][1]["value"] == {"text": f"Device/{device['id']}"}
    assert stratum["component"][0]["value"]["coding"][0]["code"] == "ct-cap-w"
    mean = next(e for e in stratum["extension"][0]["extension"] if e["url"] == "mean")
    assert (
        stratum["population"][0]["count"],
        stratum["measureScore"]["value"],
        mean["valueQuantity"]["value"],
    ) == (24, 700, 700)
    pdf = site.get(f"/stats/survey.pdf?{PERIOD}")
    assert pdf.status_code == 200 and pdf.content_type == "application/pdf"
    text = text_of(pdf.data)
    assert "DLP per examination (mGy·cm)" in text and "dlp_mgy_cm" not in text
    assert "Site not set up (kerma site set)" in text  # says so rather than leave it out
    assert f"Pelvis w IV Contrast {DEVICE} 24 700 700" in text  # n, median, mean
    embedded = archived(pdf.data)["survey-bundle.json"]  # the document and its data together
    same_site = site.get(f"/stats/survey.json?{PERIOD}").get_json()  # (with the UK DRLs)
    assert [e["resource"].get("group") for e in embedded["entry"]] == [
        e["resource"].get("group") for e in same_site["entry"]
    ]
    assert site.get(f"/stats/survey.xml?{PERIOD}").status_code == 404


def test_the_survey_from_the_command_line(site: Api, settings: Settings, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERMA_")}
    env["KERMA_DATA_DIR"] = str(settings.data_dir)
    kerma = str(Path(sys.executable).parent / "kerma")
    out = tmp_path / "survey.json"
    subprocess.run([kerma, "site", "set", "--name", "St Luke's Hospital", "--registration", "RPA-0042"],
                   env=env, check=True, capture_output=True, timeout=120)  # fmt: skip
    done = subprocess.run([kerma, "report", "survey", "--from", "2026-07-01", "--to", "2026-12-01",
                           "--out", str(out)], env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "3 rows in 3 tables" in done.stderr
    bundle = orjson.loads(out.read_bytes())
    assert bundle["type"] == "collection" and validate(bundle) == []
    [site] = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Organization"]
    assert site["fullUrl"].endswith("/fhir/Organization/site")
    assert site["resource"]["identifier"][0]["value"] == "RPA-0042"
    reporters = {e["resource"]["reporter"]["reference"] for e in bundle["entry"]
                 if e["resource"]["resourceType"] == "MeasureReport"}  # fmt: skip
    assert reporters == {"Organization/site"}


def test_the_survey_made_in_the_background_is_kept_with_both_files(site: Api, as_role: Any) -> None:
    """POST /stats/reports/survey: a Task whose report holds the PDF and the Bundle, the
    same numbers as the survey asked for on the spot."""
    from tests.reports.test_department import _finished

    assert as_role("radiographer").post(f"/stats/reports/survey?{PERIOD}", {}).status_code == 403
    assert site.post(f"/stats/reports/census?{PERIOD}", {}).status_code == 404
    started = site.post(f"/stats/reports/survey?{PERIOD}", {})
    assert started.status_code == 202, started.get_data(as_text=True)
    task = _finished(site, started.get_json())
    assert task["status"] == "completed", task
    rid = task["output"][0]["valueReference"]["reference"].split("/")[1]
    kept = site.get(f"/stats/reports/{rid}.json")
    assert kept.status_code == 200 and kept.content_type == "application/fhir+json"
    on_the_spot = site.get(f"/stats/survey.json?{PERIOD}").get_json()
    assert [e["resource"].get("group") for e in kept.get_json()["entry"]] == [
        e["resource"].get("group") for e in on_the_spot["entry"]
    ]
    pdf = site.get(f"/stats/reports/{rid}.pdf")
    assert pdf.content_type == "application/pdf"
    assert f"Pelvis w IV Contrast {DEVICE} 24 700 700" in text_of(pdf.data)
    assert site.get(f"/stats/reports/{rid}.xml").status_code == 404
