"""Notifications of DetectedIssues: routed by Subscriptions made over the API, mailed to a
real local SMTP server, posted to a real local HTTP receiver with retries, never twice."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread

from server.config import Settings
from server.fhir import FhirService
from server.fhir.validation import validate
from server.ingest import build_ingestor
from server.notify import channels
from server.notify.delivery import Dispatcher, Notifier, Policy
from server.notify.routing import NOTIFICATION_SYSTEM, queue_digests
from server.site.subscriptions import DIGEST_URL
from server.store.port import Store
from tests.conftest import Api
from tests.dicom.conftest import CORPUS
from tests.fhir.test_levels import local_level
from tests.ingest.test_drl_checks import PHILIPS, _replace_text
from tests.notify.conftest import Inbox, free_port

MODALITY_TAG = "https://kerma.example.org/fhir/CodeSystem/modality"
ROLE_URL = "https://kerma.example.org/fhir/StructureDefinition/recipient-role"
ISSUES = "https://kerma.example.org/fhir/CodeSystem/dose-issue"


def subscription(criteria: str, channel: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Subscription",
        "status": "active",
        "reason": "dose alerts",
        "criteria": criteria,
        "channel": channel,
        **extra,
    }


def _dispatcher(
    service: FhirService, port: int, retry_s: float = 1, attempts: int = 3
) -> Dispatcher:
    smtp = channels.Smtp("127.0.0.1", port, "kerma@hospital.test")
    notifier = Notifier(service, smtp, "https://kerma.hospital.test/fhir")
    return Dispatcher(service, Policy(retry_s, attempts), {NOTIFICATION_SYSTEM: notifier})


def _communications(api: Api) -> list[dict[str, Any]]:
    return api.search("/fhir/Communication?_count=100")


@pytest.fixture(autouse=True)
def site_level(api: Api) -> None:
    """One level the site set: chest/abdomen/pelvis CT, DLP total 660 mGy·cm."""
    level = local_level("Site 2026", "DRL", "113813", "examination", 660, "mGy.cm", "ct-cap-w")
    assert api.post("/fhir/ObservationDefinition", level).status_code == 201


def _ingest(store: Store, tmp_path: Path, sop_instance_uid: str = "") -> None:
    """The Philips CT (its DLP total above the site's level): one DetectedIssue; another copy
    of its dose report when a SOP Instance UID is given."""
    ds = dcmread(PHILIPS)
    ds.SOPInstanceUID = sop_instance_uid or ds.SOPInstanceUID
    data = io.BytesIO()
    ds.save_as(data)
    ingestor = build_ingestor(store, Settings(data_dir=tmp_path))
    assert ingestor.ingest_bytes(data.getvalue(), "ct.dcm").status == "ingested"


def test_mail_to_an_address_and_to_everyone_of_a_role(
    store: Store, service: FhirService, api: Api, tmp_path: Path, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, port = smtp_server
    for name, email in (("physicist", "mpe@hospital.test"), ("physicist2", "mpe2@hospital.test")):
        role = {"resourceType": "PractitionerRole", "active": True,
                "code": [{"coding": [{"system": "https://kerma.example.org/fhir/CodeSystem/role", "code": "mpe"}]}],
                "telecom": [{"system": "email", "value": email}]}  # fmt: skip
        assert api.post("/fhir/PractitionerRole", role).status_code == 201, name
    to_role = subscription(
        "DetectedIssue?severity=moderate,high",
        {"type": "email"},
        extension=[{"url": ROLE_URL, "valueCode": "mpe"}],
    )
    to_lead = subscription(
        f"DetectedIssue?_tag={MODALITY_TAG}|CT",
        {"type": "email", "endpoint": "mailto:ct-lead@hospital.test"},
    )
    to_mr = subscription(
        f"DetectedIssue?_tag={MODALITY_TAG}|MG",
        {"type": "email", "endpoint": "mailto:mammo@hospital.test"},
    )
    for sub in (to_role, to_lead, to_mr):
        assert api.post("/fhir/Subscription", sub).status_code == 201
    _ingest(store, tmp_path)
    queued = _communications(api)
    assert len(queued) == 2 and {c["status"] for c in queued} == {"preparation"}
    assert _dispatcher(service, port).run_once() == 2
    mails = inbox.wait(2)
    assert sorted(sorted(rcpt) for rcpt, _, _ in mails) == [
        ["ct-lead@hospital.test"],
        ["mpe2@hospital.test", "mpe@hospital.test"],
    ]
    _, message, _ = mails[0]
    text = message.get_content()
    assert " ".join(message["Subject"].split()) == (
        "[Kerma] moderate Diagnostic reference level exceeded: "
        "CT Philips Brilliance 16P PHILIPS-E71E3F0"
    )
    assert message["From"] == "kerma@hospital.test"
    assert (
        "CT Dose Length Product Total 1102 mGy·cm of the examination is 1.67 times the Site 2026 DRL of 660 mGy·cm"
        in text
    )
    [issue] = api.search("/fhir/DetectedIssue")
    assert f"Review and acknowledge: https://kerma.hospital.test/alerts/{issue['id']}\r\n" in text
    assert f"https://kerma.hospital.test/fhir/DetectedIssue/{issue['id']}/$acknowledge" in text
    assert "Philips" in text and "PATIENT" not in text.upper()
    sent = _communications(api)
    assert {c["status"] for c in sent} == {"completed"}
    assert all(c["about"] == [{"reference": f"DetectedIssue/{issue['id']}"}] for c in sent)
    # nothing is sent twice: the study's report again (the checks run again), the dispatcher again
    _ingest(store, tmp_path, "1.2.826.0.1.3680043.8.498.77")
    assert _dispatcher(service, port).run_once() == 0
    assert len(_communications(api)) == 2 and len(inbox.mails) == 2


def test_a_webhook_is_retried_with_back_off(
    store: Store, service: FhirService, api: Api, tmp_path: Path, webhook: Any
) -> None:
    receiver, url = webhook(failures=2)
    sub = subscription(
        "DetectedIssue?code=https://kerma.example.org/fhir/CodeSystem/dose-issue|drl-exceeded",
        {"type": "rest-hook", "endpoint": url, "payload": "application/fhir+json",
         "header": ["Authorization: Bearer hook-secret"]},
    )  # fmt: skip
    assert api.post("/fhir/Subscription", sub).status_code == 201
    _ingest(store, tmp_path)
    dispatcher = _dispatcher(service, free_port(), retry_s=10, attempts=4)
    start = 1_800_000_000.0
    assert dispatcher.run_once(start) == 1  # 503
    [pending] = _communications(api)
    assert pending["status"] == "in-progress"
    assert pending["statusReason"]["text"] == f"{url} answered HTTP 503"
    assert dispatcher.run_once(start + 9) == 0  # not yet: 10 s after the first failure
    assert dispatcher.run_once(start + 10.5) == 1  # 503 again; the next wait is 20 s
    assert dispatcher.run_once(start + 29) == 0
    assert dispatcher.run_once(start + 31) == 1  # accepted
    assert [status for _, _, status in receiver.requests] == [503, 503, 200]
    headers, body, _ = receiver.requests[-1]
    assert headers["Authorization"] == "Bearer hook-secret"
    assert headers["Content-Type"] == "application/fhir+json"
    import orjson

    posted = orjson.loads(body)
    assert posted["resourceType"] == "DetectedIssue" and posted["severity"] == "moderate"
    [done] = _communications(api)
    assert done["status"] == "completed" and "statusReason" not in done
    assert dispatcher.run_once(start + 1000) == 0


def test_an_unreachable_endpoint_is_given_up_with_its_reason(
    store: Store, service: FhirService, api: Api, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"  # nobody listens
    api.post(
        "/fhir/Subscription", subscription("DetectedIssue?", {"type": "rest-hook", "endpoint": url})
    )
    _ingest(store, tmp_path)
    dispatcher = _dispatcher(service, free_port(), retry_s=1, attempts=2)
    dispatcher.run_once(0)
    dispatcher.run_once(5)
    [stopped] = _communications(api)
    assert stopped["status"] == "stopped"
    assert "Connection refused" in stopped["statusReason"]["text"]
    assert dispatcher.run_once(10_000) == 0


def test_routing_by_device(store: Store, service: FhirService, api: Api, tmp_path: Path) -> None:
    _ingest(store, tmp_path)
    [device] = api.search("/fhir/Device")
    [issue] = api.search(f"/fhir/DetectedIssue?device=Device/{device['id']}")
    assert {"reference": f"Device/{device['id']}"} in issue["implicated"]
    assert api.search("/fhir/DetectedIssue?device=Device/another") == []


@pytest.mark.parametrize(
    ("criteria", "channel", "text"),
    [
        ("Observation?code=x", {"type": "email", "endpoint": "mailto:a@b"}, "DetectedIssue"),
        ("DetectedIssue?colour=red", {"type": "email", "endpoint": "mailto:a@b"}, "colour"),
        ("DetectedIssue?", {"type": "websocket"}, "channel.type"),
        ("DetectedIssue?", {"type": "rest-hook", "endpoint": "ftp://x"}, "http(s)"),
        ("DetectedIssue?", {"type": "email"}, "mailto:"),
    ],
)
def test_subscriptions_kerma_cannot_serve_are_refused(
    api: Api, criteria: str, channel: dict[str, Any], text: str
) -> None:
    refused = api.post("/fhir/Subscription", subscription(criteria, channel))
    assert refused.status_code == 422
    assert any(text in i["diagnostics"] for i in refused.get_json()["issue"]), refused.get_json()


def test_only_mpe_and_admin_route_alerts(as_role: Any) -> None:
    sub = subscription("DetectedIssue?", {"type": "email", "endpoint": "mailto:a@b"})
    for name in ("radiographer", "viewer", "integration"):
        assert as_role(name).post("/fhir/Subscription", sub).status_code == 403, name
    created = as_role("admin").post("/fhir/Subscription", sub).get_json()
    assert as_role("integration").get(f"/fhir/Subscription/{created['id']}").status_code == 200
    assert as_role("integration").delete(f"/fhir/Subscription/{created['id']}").status_code == 403


def test_the_daily_review_list(
    store: Store, service: FhirService, api: Api, tmp_path: Path, smtp_server: tuple[Inbox, int]
) -> None:
    """A digest subscription gets one mail a day with every alert still to review, and no
    mail per alert."""
    inbox, port = smtp_server
    digest = subscription(
        "DetectedIssue?",
        {"type": "email", "endpoint": "mailto:rpo@hospital.test"},
        extension=[{"url": DIGEST_URL, "valueBoolean": True}],
    )
    assert api.post("/fhir/Subscription", digest).status_code == 201
    _ingest(store, tmp_path)  # one DRL exceedance
    _ingest_german_qa_as_patient(store, tmp_path)  # one significant event
    assert _communications(api) == []  # nothing per alert
    [issue] = api.search(f"/fhir/DetectedIssue?code={ISSUES}|drl-exceeded")
    api.post(f"/fhir/DetectedIssue/{issue['id']}/$acknowledge", {"resourceType": "Parameters"})
    today = date(2026, 11, 26)
    assert len(queue_digests(service, today)) == 1
    assert queue_digests(service, today) == []  # once a day
    assert _dispatcher(service, port).run_once() == 1
    [(rcpt, message, _)] = inbox.wait(1)
    assert rcpt == ["rpo@hospital.test"]
    assert message["Subject"] == "[Kerma] 1 dose alerts to review"
    text = message.get_content()
    assert "1. Significant event (high)" in text and "CTDIvol above 80 mGy" in text
    assert issue["id"] not in text  # acknowledged: off the list
    assert validate(_communications(api)[0]) == []


def test_a_digest_is_mail_only(api: Api) -> None:
    hook = subscription(
        "DetectedIssue?",
        {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/hook"},
        extension=[{"url": DIGEST_URL, "valueBoolean": True}],
    )
    assert api.post("/fhir/Subscription", hook).status_code == 422


def _ingest_german_qa_as_patient(store: Store, tmp_path: Path) -> None:
    """GE's QA scan (CTDIvol 222.59 mGy) presented as a patient's abdomen CT."""
    ds = dcmread(CORPUS / "openrem" / "CT-RDSR-GEPixelMed.dcm")
    _replace_text(ds.ContentSequence, "10.13 RADIOTHERAPY QA", "Abdomen")
    ds.StudyInstanceUID = ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    data = io.BytesIO()
    ds.save_as(data)
    settings = Settings(data_dir=tmp_path, alert_rules="de_strlschv_annex14")
    assert (
        build_ingestor(store, settings).ingest_bytes(data.getvalue(), "ct.dcm").status == "ingested"
    )


def test_routing_by_department(
    store: Store, service: FhirService, api: Api, tmp_path: Path
) -> None:
    """The department the modality names (Institutional Department Name) tags its alerts;
    a subscription for a department gets that department's alerts only."""
    tag = "https://kerma.example.org/fhir/CodeSystem/department"
    subs = {}
    for department in ("CT Nord", "CT Süd"):
        sub = subscription(
            f"DetectedIssue?_tag={tag}|{department}", {"type": "email", "endpoint": "mailto:a@b"}
        )
        subs[department] = api.post("/fhir/Subscription", sub).get_json()["id"]
    ds = dcmread(PHILIPS)
    ds.InstitutionalDepartmentName = "CT Nord"
    data = io.BytesIO()
    ds.save_as(data)
    ingestor = build_ingestor(store, Settings(data_dir=tmp_path))
    assert ingestor.ingest_bytes(data.getvalue(), "ct.dcm").status == "ingested"
    [issue] = api.search("/fhir/DetectedIssue")
    assert {"system": tag, "code": "CT Nord"} in issue["meta"]["tag"]
    [queued] = _communications(api)
    assert queued["basedOn"] == [{"reference": f"Subscription/{subs['CT Nord']}"}]
