"""Classification rules edited over the API as a FHIR Library (versioned by FHIR history),
used for what is ingested next, and applied to stored studies by $reclassify as a Task; also
from the command line (`kerma classification export`, `kerma classification reapply`)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from server.classification.rules import library
from server.config import Settings
from server.fhir import FhirService
from server.ingest import build_ingestor
from server.mappings import classification_rules, read_text
from server.store.port import Store
from tests.conftest import Api
from tests.dicom.conftest import CORPUS
from tests.ingest.test_drl_checks import PHILIPS

LOCAL = "https://kerma.example.org/fhir/CodeSystem/procedure"
KIDNEYS_RULE = "  - {id: ct-kidneys, modality: [CT], all: ['kidney'], procedure: ct-kidneys}\n"
KIDNEYS_ROW = f"{LOCAL},ct-kidneys,CT Kidneys,CT,ABDOMEN,local\n"


SHIPPED = classification_rules().version


def edited(version: int, rule: str = KIDNEYS_RULE, row: str = KIDNEYS_ROW) -> dict[str, Any]:
    """The shipped tables with a rule put first and a procedure added, as version `version`."""
    rules = read_text("classification/rules.yaml")
    rules = rules.replace(f"version: {SHIPPED}\n", f"version: {version}\n")
    rules = rules.replace("rules:\n", "rules:\n" + rule, 1)
    body = library(rules, read_text("classification/procedures.csv") + row)
    return {**body, "id": "classification"}


def _procedure(service: FhirService, study_ref: str) -> tuple[str, int]:
    study = orjson.loads(service.read(*study_ref.split("/")).body or b"")
    [decision] = [e for e in study["extension"] if e["url"].endswith("classification")]
    version = decision["extension"][1]["valueInteger"]
    return study["procedureCode"][0]["coding"][0]["code"], version


def test_rules_edited_over_the_api_classify_what_comes_next(
    store: Store, service: FhirService, api: Api, as_role: Any, tmp_path: Path
) -> None:
    first = build_ingestor(store, Settings(data_dir=tmp_path)).ingest_file(PHILIPS)
    assert _procedure(service, first.study or "") == ("ct-cap-w", SHIPPED)
    new, newer = edited(SHIPPED + 1), edited(SHIPPED + 2)
    assert as_role("viewer").put("/fhir/Library/classification", new).status_code == 403
    assert as_role("radiographer").put("/fhir/Library/classification", new).status_code == 403
    assert as_role("integration").put("/fhir/Library/classification", new).status_code == 403
    saved = api.put("/fhir/Library/classification", new)
    assert saved.status_code == 201, saved.get_data(as_text=True)
    assert api.put("/fhir/Library/classification", newer).status_code == 200
    history = api.get("/fhir/Library/classification/_history").get_json()
    assert [e["resource"]["version"] for e in history["entry"]] == [
        newer["version"],
        new["version"],
    ]
    # a new copy of the study, ingested after the change, gets the rules of version 3
    from pydicom import dcmread

    ds = dcmread(PHILIPS)
    ds.StudyInstanceUID = ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.5"
    data = tmp_path / "copy.dcm"
    ds.save_as(data)
    again = build_ingestor(store, Settings(data_dir=tmp_path)).ingest_file(data)
    assert _procedure(service, again.study or "") == ("ct-kidneys", SHIPPED + 2)
    assert _procedure(service, first.study or "") == ("ct-cap-w", SHIPPED)  # until reclassified


@pytest.mark.parametrize(
    ("library", "text"),
    [
        (edited(SHIPPED + 1, rule="  - {id: bad, modality: [CT], all: ['(unclosed'], procedure: ct-kidneys}\n"),
         "cannot be used"),
        (edited(SHIPPED + 1, row=""), "'ct-kidneys' is not in procedures.csv"),
        ({**edited(SHIPPED + 1), "version": "70"}, f"must be the rules' version ({SHIPPED + 1})"),
        ({**edited(SHIPPED + 1), "content": edited(SHIPPED + 1)["content"][:1]}, "procedures.csv"),
        ({**edited(SHIPPED + 1), "content": [{"contentType": "application/yaml", "data": "%%%"}, edited(SHIPPED + 1)["content"][1]]},
         "base64"),
    ],
)  # fmt: skip
def test_rules_that_cannot_work_are_refused(api: Api, library: dict[str, Any], text: str) -> None:
    refused = api.put("/fhir/Library/classification", library)
    assert refused.status_code == 422
    assert any(text in i["diagnostics"] for i in refused.get_json()["issue"]), refused.get_json()


def test_reclassify_stored_studies_as_a_task(
    store: Store, service: FhirService, api: Api, as_role: Any, tmp_path: Path
) -> None:
    ingestor = build_ingestor(store, Settings(data_dir=tmp_path))
    philips = ingestor.ingest_file(PHILIPS).study or ""
    ingestor.ingest_file(CORPUS / "openrem" / "CT-RDSR-Siemens_Flash-TAP-SS.dcm")
    api.put("/fhir/Library/classification", edited(SHIPPED + 1))
    assert as_role("viewer").post("/fhir/ImagingStudy/$reclassify", {}).status_code == 403
    started = api.post("/fhir/ImagingStudy/$reclassify", {})
    assert started.status_code == 202
    location = started.headers["Content-Location"]
    assert location.endswith(f"/Task/{started.get_json()['id']}")
    task = _finished(api, "/fhir/Task/" + location.rsplit("/", 1)[1])
    assert task["status"] == "completed"
    assert {o["type"]["text"]: o["valueInteger"] for o in task["output"]} == {
        "changed": 1,  # the Philips study, to the new rule
        "confirmed": 1,  # the Siemens one: the same procedures, now by the new version
        "rulesVersion": SHIPPED + 1,
    }
    assert _procedure(service, philips) == ("ct-kidneys", SHIPPED + 1)
    uid = philips_uid(service, philips)
    [row] = [f for f in store.facts() if f.study_uid == uid and f.level == "study"]
    assert row.procedure == "CT Kidneys"  # the facts follow


def philips_uid(service: FhirService, study_ref: str) -> str:
    study = orjson.loads(service.read(*study_ref.split("/")).body or b"")
    return str(study["identifier"][0]["value"]).removeprefix("urn:oid:")


def _finished(api: Api, url: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        task: dict[str, Any] = api.get(url).get_json()
        if task["status"] not in ("requested", "in-progress"):
            return task
        time.sleep(0.05)
    raise AssertionError("the task did not finish")


def test_export_and_reapply_from_the_command_line(tmp_path: Path) -> None:
    kerma = str(Path(sys.executable).parent / "kerma")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KERMA_")},
           "KERMA_DATA_DIR": str(tmp_path)}  # fmt: skip
    exported = subprocess.run([kerma, "classification", "export"], env=env, capture_output=True,
                              text=True, check=True)  # fmt: skip
    body = orjson.loads(exported.stdout)
    rules = base64.b64decode(body["content"][0]["data"]).decode()
    assert body["version"] == str(SHIPPED) and rules == read_text("classification/rules.yaml")
    subprocess.run([kerma, "ingest", str(PHILIPS)], env=env, capture_output=True, check=True)
    done = subprocess.run([kerma, "classification", "reapply"], env=env, capture_output=True,
                          text=True, check=True)  # fmt: skip
    assert done.stdout == f"unchanged\t1\nrulesVersion\t{SHIPPED}\n" and " completed" in done.stderr
