"""FHIR push to a second `kerma serve` acting as the EHR: the study's Observations are created
once, even when the Bundle is sent again; a study whose dose changed updates its summary; with
a static token and with SMART Backend Services (a client registered on the EHR)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydicom import dcmread

from server.config import Settings
from server.fhir import FhirService
from server.ingest import build_ingestor
from server.notify.delivery import Dispatcher, Policy
from server.outbound.push import FhirPusher
from server.outbound.senders import senders
from server.store.port import Store
from tests.conftest import kerma_serve
from tests.dicom.conftest import CORPUS, SIEMENS_CT, free_port

KERMA = str(Path(sys.executable).parent / "kerma")
MULTI = [CORPUS / "openrem" / f"CT-RDSR-Siemens-Multi-{i}.dcm" for i in (1, 2)]
pytestmark = pytest.mark.slow


class Ehr:
    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir, self.base = data_dir, f"http://127.0.0.1:{port}/fhir"
        self.token = ""

    def kerma(self, *args: str) -> str:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("KERMA_")},
               "KERMA_DATA_DIR": str(self.data_dir)}  # fmt: skip
        return subprocess.run([KERMA, *args], env=env, check=True, capture_output=True,
                              text=True, timeout=60).stdout  # fmt: skip

    def total(self, query: str) -> int:
        request = urllib.request.Request(f"{self.base}/{query}&_summary=count",
                                         headers={"Authorization": f"Bearer {self.token}"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as r:
            return int(json.load(r)["total"])


@pytest.fixture(scope="module")
def ehr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ehr]:
    folder, port = tmp_path_factory.mktemp("ehr"), free_port()
    server = Ehr(folder, port)
    server.token = server.kerma("users", "add", "reader", "--role", "viewer").split()[-1]

    def up() -> bool:
        try:
            urllib.request.urlopen(f"{server.base}/metadata", timeout=1).close()
        except OSError:
            return False
        return True

    with kerma_serve(folder, up, http_port=str(port), dicom_port="0", hl7_port="0",
                     base_url=server.base):  # fmt: skip
        yield server


def _pushes(service: FhirService) -> list[dict[str, Any]]:
    found = service.search("Communication", [("identifier", "urn:kerma:outbound|")]).matches
    return [orjson.loads(s.body or b"") for s in found]


def _counts(ehr: Ehr, study_uid: str) -> tuple[int, ...]:
    return (ehr.total("Patient?identifier=urn:kerma:patient-id|123456"),
            ehr.total(f"ImagingStudy?identifier=urn:dicom:uid|urn:oid:{study_uid}"),
            ehr.total("Observation?code=113852"), ehr.total("Observation?code=73569-6"))  # fmt: skip


def test_a_study_is_created_once_however_often_it_is_sent(
    settings: Settings, store: Store, service: FhirService, ehr: Ehr
) -> None:
    token = ehr.kerma("users", "add", "kerma-site", "--role", "integration").split()[-1]
    site = replace(settings, fhir_push_url=ehr.base, fhir_push_token=token)
    assert build_ingestor(store, site).ingest_file(SIEMENS_CT).status == "ingested"
    dispatcher = Dispatcher(service, Policy(retry_s=1, attempts=3), senders(service, site))
    assert dispatcher.run_once() == 1
    [push] = _pushes(service)
    assert push["status"] == "completed", push.get("statusReason")
    study_uid = str(dcmread(SIEMENS_CT).StudyInstanceUID)
    assert _counts(ehr, study_uid) == (1, 1, 4, 1)  # the Siemens file: 4 irradiation events
    FhirPusher(service, site).send(push)  # sent again: the conditional creates find them
    assert _counts(ehr, study_uid) == (1, 1, 4, 1)
    request = urllib.request.Request(f"{ehr.base}/Observation?code=73569-6&_count=5",
                                     headers={"Authorization": f"Bearer {ehr.token}"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as r:
        [summary] = [e["resource"] for e in json.load(r)["entry"]]
    dlp = next(c for c in summary["component"] if c["code"]["coding"][0]["code"] == "113813")
    assert dlp["valueQuantity"]["value"] == 724.52 and dlp["valueQuantity"]["code"] == "mGy.cm"
    assert summary["partOf"][0]["reference"].startswith("ImagingStudy/")  # resolved on the EHR


def test_smart_backend_services_and_a_study_that_grows(
    settings: Settings, store: Store, service: FhirService, ehr: Ehr, tmp_path: Path
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "kerma-site.key"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))  # fmt: skip
    jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())), "alg": "RS384"}
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    ehr.kerma("clients", "add", "kerma-smart", "--role", "integration", "--jwks",
              str(tmp_path / "jwks.json"))  # fmt: skip
    site = replace(settings, fhir_push_url=ehr.base, fhir_push_client_id="kerma-smart",
                   fhir_push_key=pem)  # fmt: skip
    ingestor = build_ingestor(store, site)
    dispatcher = Dispatcher(service, Policy(retry_s=1, attempts=3), senders(service, site))
    study_uid = str(dcmread(MULTI[0]).StudyInstanceUID)
    before = ehr.total("Observation?code=113852")
    ingestor.ingest_file(MULTI[0])
    dispatcher.run_once()
    first = ehr.total("Observation?code=113852") - before
    ingestor.ingest_file(MULTI[1])  # the same study: more events, the summary changes
    dispatcher.run_once()
    assert {p["status"] for p in _pushes(service)} == {"completed"}, [
        p.get("statusReason") for p in _pushes(service)
    ]
    events = ehr.total("Observation?code=113852") - before
    assert events > first > 0
    assert ehr.total(f"ImagingStudy?identifier=urn:dicom:uid|urn:oid:{study_uid}") == 1
    local = service.search("Observation", [("code", "113852"), ("_summary", "count")]).total
    assert events == local  # every event of the study, once
