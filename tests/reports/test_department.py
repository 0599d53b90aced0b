"""The department report: a real PDF (WeasyPrint) whose text, read back with pypdf, holds the
numbers the statistics API gives, the DRL comparison, and the alerts with how they were
handled; made in the background over REST, and from the command line."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pypdf

from server.config import Settings
from server.fhir.validation import validate
from server.store.port import Store
from tests.conftest import Api

PERIOD = "from=2026-07-01&to=2026-12-01"
DEVICE = "SIEMENS SOMATOM Definition Flash CTAWP00001"


def text_of(pdf: bytes) -> str:
    return " ".join(
        " ".join(p.extract_text().split()) for p in pypdf.PdfReader(io.BytesIO(pdf)).pages
    )


def archived(pdf: bytes) -> dict[str, Any]:
    """The files embedded in a PDF/A-3b (read back with pypdf), by name, as JSON; fails when
    its XMP metadata does not claim PDF/A-3b."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data()
    assert b'pdfaid:part="3" pdfaid:conformance="B"' in xmp
    return {name: orjson.loads(data[0]) for name, data in reader.attachments.items()}


def _finished(api: Api, task: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        current: dict[str, Any] = api.get(f"/fhir/Task/{task['id']}").get_json()
        if current["status"] not in ("requested", "in-progress") or time.monotonic() > deadline:
            return current
        time.sleep(0.1)


def test_the_department_report_over_rest(site: Api, as_role: Any) -> None:
    alerts = site.search(
        "/fhir/DetectedIssue?code=https://kerma.example.org/fhir/CodeSystem/dose-issue|drl-exceeded&_count=100"
    )
    assert len(alerts) == 12
    url = f"/fhir/DetectedIssue/{alerts[0]['id']}/$acknowledge"
    comment = {
        "resourceType": "Parameters",
        "parameter": [{"name": "comment", "valueString": "new protocol from December"}],
    }
    assert site.post(url, comment).status_code == 200
    assert as_role("authority").post(f"/stats/reports/department?{PERIOD}", {}).status_code == 403
    started = site.post(f"/stats/reports/department?{PERIOD}", {})
    assert started.status_code == 202, started.get_data(as_text=True)
    task = _finished(site, started.get_json())
    assert task["status"] == "completed", task
    [output] = task["output"]
    document = output["valueReference"]["reference"]
    pdf = site.get(f"/stats/reports/{document.split('/')[1]}.pdf")
    assert pdf.status_code == 200 and pdf.content_type == "application/pdf"
    assert pdf.data.startswith(b"%PDF")
    text = text_of(pdf.data)
    [row] = site.get(
        f"/stats/dose?quantity=dlp_mgy_cm&group=procedure,device&modality=CT&{PERIOD}"
    ).get_json()["rows"]
    assert (row["n"], row["median"], row["p75"]) == (24, 700, 900)
    # the table row: procedure (its cell wraps after "Abdomen/"), device, n, median, 75th
    # percentile, DRL (ratio)
    assert f"Pelvis w IV Contrast {DEVICE} 24 700 900 UKHSA GB 2022 660 (1.06x)" in text
    assert "CT: DLP per examination" in text and "CT: CTDIvol per acquisition" in text
    assert "Period 2026-07-01 to 2026-12-01" in text
    assert text.count("Diagnostic reference level exceeded") == 12
    assert (
        "acknowledged by mpe" in text and "new protocol from December" in text
    )  # "mpe-user" wraps
    assert text.count(" open ") + text.count(" open") >= 11
    assert "Examinations by weekday and hour" in text  # the load chart's text
    bundle = archived(pdf.data)["department-report-bundle.json"]
    assert validate(bundle) == []
    dlp = next(e["resource"] for e in bundle["entry"]
               if e["resource"].get("measure", "").endswith("dose-dlp-mgy-cm-study"))  # fmt: skip
    [stratum] = dlp["group"][0]["stratifier"][0]["stratum"]
    assert (stratum["population"][0]["count"], stratum["measureScore"]["value"]) == (24, 700)


def test_the_department_report_from_the_command_line(
    site: Api, settings: Settings, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERMA_")}
    env["KERMA_DATA_DIR"] = str(settings.data_dir)
    env["KERMA_DRL_SETS"] = "UKHSA GB 2022"
    out = tmp_path / "report.pdf"
    kerma = str(Path(sys.executable).parent / "kerma")
    site_set = subprocess.run([kerma, "site", "set", "--name", "St Luke's Hospital", "--address",
                               "1 Infirmary Road", "--address", "Leeds", "--registration", "RPA-0042",
                               "--mpe", "Dr Ann Hart"], env=env, capture_output=True, text=True,
                              timeout=120)  # fmt: skip
    assert site_set.returncode == 0, site_set.stderr
    assert "Organization/site created: St Luke's Hospital" in site_set.stdout
    done = subprocess.run([kerma, "report", "department", "--from", "2026-07-01", "--to", "2026-12-01",
                           "--out", str(out)], env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = text_of(out.read_bytes())
    assert f"Pelvis w IV Contrast {DEVICE} 24 700 900" in text
    # the document stands on its own: who reports, who is responsible, what it compares with
    assert "St Luke's Hospital · 1 Infirmary Road, Leeds · registration RPA-0042" in text
    assert "Responsible medical physics expert Dr Ann Hart" in text
    assert "Approved by (name, role)" in text and "Date of approval" in text
    assert "Dose values compared with: UKHSA GB 2022." in text
    bad = subprocess.run([kerma, "report", "department", "--from", "2026-12-01", "--to", "2026-07-01",
                          "--out", str(out)], env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert bad.returncode == 2 and "--to must be after --from" in bad.stderr


def test_a_report_mailed_to_its_subscribers(
    site: Api, settings: Settings, store: Store, smtp_server: tuple[Any, int]
) -> None:
    """What the monthly run does: the report job stores the PDF, a Subscription on reports
    queues it, and the mail arrives with the PDF attached."""
    from server.jobs import tasks
    from server.jobs.kinds import kinds
    from server.notify import channels
    from server.notify.delivery import Dispatcher, Notifier, Policy
    from server.notify.routing import NOTIFICATION_SYSTEM
    from server.site import build_service

    inbox, port = smtp_server
    sub = {"resourceType": "Subscription", "status": "active", "reason": "monthly reports",
           "criteria": "DocumentReference?type=https://kerma.example.org/fhir/CodeSystem/report|department",
           "channel": {"type": "email", "endpoint": "mailto:rpo@hospital.test"}}  # fmt: skip
    assert site.post("/fhir/Subscription", sub).status_code == 201
    service = build_service(store, settings)
    task = tasks.create(
        service,
        "report-department",
        "the monthly report",
        {"from": "2026-11-01", "to": "2026-12-01"},
    )
    assert tasks.run(service, task["id"], kinds(service, settings))["status"] == "completed"
    smtp = channels.Smtp("127.0.0.1", port, "kerma@hospital.test")
    notifier = Notifier(service, smtp, "https://kerma.hospital.test/fhir")
    assert Dispatcher(service, Policy(), {NOTIFICATION_SYSTEM: notifier}).run_once() == 1
    [(rcpt, message, _)] = inbox.wait(1)
    assert rcpt == ["rpo@hospital.test"]
    assert message["Subject"] == "[Kerma] Department dose report 2026-11-01 to 2026-12-01"
    [pdf] = [part for part in message.iter_attachments()]
    assert pdf.get_content_type() == "application/pdf"
    assert pdf.get_filename() == "department 2026-11-01 to 2026-12-01.pdf"
    assert "Period 2026-11-01 to 2026-12-01" in text_of(pdf.get_content())


def test_the_list_of_examinations_above_levels(site: Api, as_role: Any) -> None:
    assert as_role("authority").get(f"/stats/above-levels?{PERIOD}").status_code == 403
    rows = site.get(f"/stats/above-levels?{PERIOD}").get_json()["rows"]
    assert len(rows) == 12 and {r["code"] for r in rows} == {"drl-exceeded"}
    assert {r["device_name"] for r in rows} == {DEVICE} and rows[0]["identified"] < rows[-1][
        "identified"
    ]
    csv_text = site.get(f"/stats/above-levels?format=csv&{PERIOD}").get_data(as_text=True)
    assert csv_text.splitlines()[0] == "issue,identified,severity,code,device_name,detail,status"
    assert site.get(f"/stats/above-levels?device=Device/other&{PERIOD}").get_json()["rows"] == []
