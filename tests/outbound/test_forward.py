"""RDSR forwarding (IHE REM): received dose reports reach dcmtk's storescp and Orthanc; the
registry's copy is de-identified per PS3.15 and carries no identifier of the source, while its
dose values stay; a destination that is down gets the object once it is back."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from io import BytesIO
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydicom import Dataset, dcmread
from pydicom.uid import UID

from server.config import Settings
from server.fhir import FhirService
from server.ingest import build_ingestor
from server.notify.delivery import Dispatcher, Policy
from server.outbound.deidentify import deidentified
from server.outbound.senders import senders
from server.store.port import Store
from tests.dicom.conftest import (
    CORPUS,
    SIEMENS_CT,
    echo,
    free_port,
    orthanc_running,
    wait_until,
)

PHILIPS_RF = CORPUS / "openrem" / "RF-RDSR-Philips_Azurion.dcm"
pytestmark = pytest.mark.slow


class StoreScp:
    """dcmtk's storescp, writing what it receives into a folder."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.folder.mkdir(exist_ok=True)
        self._process = subprocess.Popen(
            ["storescp", "--output-directory", str(self.folder), "-aet", "REGISTRY", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(lambda: echo(self.port, "REGISTRY"), seconds=20)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)

    def received(self) -> list[bytes]:
        return [p.read_bytes() for p in sorted(self.folder.iterdir())]


@pytest.fixture
def storescp(tmp_path: Path) -> Iterator[StoreScp]:
    if shutil.which("storescp") is None:
        pytest.fail("dcmtk's storescp is not installed: scripts/setup installs it")
    scp = StoreScp(tmp_path / "storescp")
    scp.start()
    yield scp
    scp.stop()


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """A running Orthanc: (DICOM port, HTTP port)."""
    with orthanc_running(tmp_path / "orthanc", Name="KermaForwardTest") as ports:
        yield ports


def _orthanc_sop_uids(http: int) -> set[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/instances?expand", timeout=10) as r:
        return {i["MainDicomTags"]["SOPInstanceUID"] for i in json.load(r)}


def _outbound(service: FhirService) -> list[dict[str, Any]]:
    found = service.search("Communication", [("identifier", "urn:kerma:outbound|")]).matches
    return [orjson.loads(s.body or b"") for s in found]


def identifiers(dataset: Dataset) -> set[str]:
    """Every value in the object that identifies its patient, site, device or instances:
    names (any PN, any person or organisation text of the SR), IDs, addresses, serial numbers,
    birth date, and every UID that is not a registered one (SOP classes, codes)."""
    found: set[str] = set()
    for element in dataset.iterall():
        value = element.value
        if element.VR == "PN" and value:
            found.update(part for part in str(value).split("^") if len(part) >= 3)
        elif element.VR == "UI" and value:
            values = value if element.VM > 1 else [value]
            found.update(str(v) for v in values if UID(str(v)).name == str(v))
        elif element.keyword in _IDENTIFYING and value:
            found.add(str(value))
    return {v.strip() for v in found if len(v.strip()) >= 3}


def _carries(copy: bytes, secret: str) -> bool:
    """Whether the bytes hold the secret; a number only where digits do not go on either side:
    the pseudonyms are long random numbers (2.25.<39 digits>), and one began 123456, the
    Siemens file's patient ID."""
    if not secret.isdigit():
        return secret.encode() in copy
    return re.search(rb"(?<![0-9])" + secret.encode() + rb"(?![0-9])", copy) is not None


_IDENTIFYING = {"PatientID", "OtherPatientIDs", "PatientBirthDate", "AccessionNumber", "StudyID",
                "DeviceSerialNumber", "StationName", "InstitutionName", "InstitutionAddress",
                "InstitutionalDepartmentName", "PatientAddress", "IssuerOfPatientID"}  # fmt: skip


def _dlp_total(dataset: Dataset) -> float:
    for item in dataset.iterall():
        if item.keyword == "ContentSequence":
            for content in item.value:
                names = content.get("ConceptNameCodeSequence") or [Dataset()]
                if names[0].get("CodeValue") == "113813" and "MeasuredValueSequence" in content:
                    return float(content.MeasuredValueSequence[0].NumericValue)
    raise AssertionError("no DLP Total")


def test_forwarded_to_orthanc_as_received_and_to_a_registry_de_identified(
    settings: Settings, store: Store, service: FhirService, storescp: StoreScp,
    orthanc: tuple[int, int],
) -> None:  # fmt: skip
    site = replace(settings, forward_to=f"ORTHANC@127.0.0.1:{orthanc[0]}",
                   forward_deidentified_to=f"REGISTRY@127.0.0.1:{storescp.port}")  # fmt: skip
    ingestor = build_ingestor(store, site)
    for path in (SIEMENS_CT, PHILIPS_RF):
        assert ingestor.ingest_file(path).status == "ingested"
    assert (
        len(_outbound(service)) == 4 and len(list((settings.data_dir / "outbound").iterdir())) == 2
    )
    dispatcher = Dispatcher(service, Policy(retry_s=1, attempts=3), senders(service, site))
    assert dispatcher.run_once() == 4
    assert {c["status"] for c in _outbound(service)} == {"completed"}
    sources = [dcmread(path) for path in (SIEMENS_CT, PHILIPS_RF)]
    assert _orthanc_sop_uids(orthanc[1]) == {str(ds.SOPInstanceUID) for ds in sources}
    copies = storescp.received()
    assert len(copies) == 2
    for source in sources:
        secrets = identifiers(source)
        assert "SMITH" in secrets or len(secrets) > 5  # the scan looks for something real
        for copy in copies:
            assert not [s for s in secrets if _carries(copy, s)], "an identifier went out"
    siemens_copy = next(dcmread(__import__("io").BytesIO(c)) for c in copies
                        if b"SIEMENS" in c.upper())  # fmt: skip
    assert siemens_copy.PatientIdentityRemoved == "YES"
    assert [c.CodeValue for c in siemens_copy.DeidentificationMethodCodeSequence] == [
        "113100", "113104", "113106", "113108"]  # fmt: skip
    assert _dlp_total(siemens_copy) == _dlp_total(sources[0]) == 724.52  # the dose stays
    assert siemens_copy.StudyDate == sources[0].StudyDate and siemens_copy.PatientAge == "067Y"
    assert not list((settings.data_dir / "outbound").iterdir())  # delivered: not kept


@pytest.mark.parametrize("name", ["DX-Im-Carestream_DR7500-1.dcm", "ESR_non-dose.dcm"])
def test_an_object_without_a_dose_tree_is_de_identified_too(name: str) -> None:
    """An image or an SR without content: no identifier and no private attribute goes out
    (the content tree's rule raised on them)."""
    path = CORPUS / "openrem" / name
    source = dcmread(path)
    copy = deidentified(path.read_bytes(), bytes(32))
    # the Full Dates option keeps the examination's dates; this image's birth date is that day
    secrets = identifiers(source) - {str(source.get("StudyDate", ""))}
    assert secrets and not [s for s in secrets if _carries(copy, s)], "an identifier went out"
    copied = dcmread(BytesIO(copy))
    assert copied.PatientIdentityRemoved == "YES"
    assert any(e.tag.is_private for e in source.iterall()) == (name.startswith("DX"))
    assert not [e.tag for e in copied.iterall() if e.tag.is_private]


def test_a_registry_that_is_down_gets_the_report_when_it_is_back(
    settings: Settings, store: Store, service: FhirService, storescp: StoreScp
) -> None:
    site = replace(settings, forward_deidentified_to=f"REGISTRY@127.0.0.1:{storescp.port}")
    storescp.stop()
    assert build_ingestor(store, site).ingest_file(SIEMENS_CT).status == "ingested"
    dispatcher = Dispatcher(service, Policy(retry_s=1, attempts=3), senders(service, site))
    dispatcher.run_once(now=0)
    [waiting] = _outbound(service)
    assert waiting["status"] == "in-progress"
    assert "did not accept an association" in waiting["statusReason"]["text"]
    storescp.start()
    dispatcher.run_once(now=time.time() + 10)
    [done] = _outbound(service)
    assert done["status"] == "completed" and len(storescp.received()) == 1


def test_only_the_chosen_devices_reports_are_forwarded(
    settings: Settings, store: Store, service: FhirService, tmp_path: Path
) -> None:
    site = replace(settings, forward_to="PACS@127.0.0.1:104", forward_from="CT01")
    ingestor = build_ingestor(store, site)

    def spooled(path: Path, calling_ae: str) -> Path:
        dataset = dcmread(path)
        dataset.file_meta.SourceApplicationEntityTitle = calling_ae
        target = tmp_path / f"{calling_ae}-{path.name}"
        dataset.save_as(target, enforce_file_format=True)
        return target

    assert ingestor.ingest_spooled(spooled(PHILIPS_RF, "CATHLAB")).status == "ingested"
    assert _outbound(service) == []  # another device's
    assert ingestor.ingest_spooled(spooled(SIEMENS_CT, "CT01")).status == "ingested"
    [queued] = _outbound(service)
    assert queued["category"][0]["coding"][0]["code"] == "dicom-forward"
    kept = settings.data_dir / "outbound" / f"{dcmread(SIEMENS_CT).SOPInstanceUID}.dcm"
    assert kept.read_bytes() == spooled(SIEMENS_CT, "CT01").read_bytes()
