"""A running DICOM listener over loopback, and a pynetdicom SCU to talk to it."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydicom import Dataset, dcmread
from pynetdicom import AE
from pynetdicom.association import Association

from server.config import Settings
from server.dicom.scp import storage_classes
from server.dicom.transport import NO_DELAY
from server.fhir import FhirService
from server.ingest import Quarantine, build_ingestor
from server.network import DicomListener, start_dicom
from server.site import build_service
from server.store.port import Store
from server.store.sqlite import SqliteStore

CORPUS = Path(__file__).parent.parent / "data" / "dicom"
SIEMENS_CT = CORPUS / "openrem" / "CT-RDSR-Siemens_Flash-TAP-SS.dcm"
ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"


@pytest.fixture
def dicom_settings(settings: Settings) -> Settings:
    return replace(settings, dicom_port=0, ae_title="KERMA")


@pytest.fixture
def listener(dicom_settings: Settings, store: Store) -> Iterator[DicomListener]:
    running = start_dicom(dicom_settings, store)
    yield running
    running.stop()


Connect = Callable[..., Association]


@pytest.fixture
def connect(listener: DicomListener) -> Iterator[Connect]:
    """`connect(ae_title="MODALITY")` -> an established association; released afterwards."""
    opened: list[Association] = []

    def _connect(ae_title: str = "MODALITY", contexts: list[str] | None = None) -> Association:
        ae = AE(ae_title=ae_title)
        for uid in contexts or ["1.2.840.10008.1.1", *storage_classes()]:
            ae.add_requested_context(uid)
        assoc = ae.associate("127.0.0.1", listener.port, ae_title="KERMA", evt_handlers=[NO_DELAY])
        opened.append(assoc)
        return assoc

    yield _connect
    for assoc in opened:
        if assoc.is_established:
            assoc.release()


def wait_until(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def read(path: Path) -> Dataset:
    return dcmread(path)


def summary_of(service: FhirService, study_uid: str) -> dict[str, Any]:
    """The Radiation Dose Summary of the study with this UID."""
    study = service.search("ImagingStudy", [("identifier", f"urn:dicom:uid|urn:oid:{study_uid}")])
    assert study.total == 1
    found = service.search(
        "Observation",
        [("part-of", f"ImagingStudy/{study.matches[0].rid}"), ("code", "http://loinc.org|73569-6")],
    )
    return orjson.loads(found.matches[0].body or b"")  # type: ignore[no-any-return]


DoseReports = dict[str, tuple[frozenset[str], int]]


def dose_reports(service: FhirService) -> DoseReports:
    """Per study: the SOP Instance UIDs its dose summary was read from, and its event count."""
    found: DoseReports = {}
    for stored in service.search("Observation", [("code", "73569-6"), ("_count", "1000")]).matches:
        summary = orjson.loads(stored.body or b"")
        study_ref = summary["partOf"][0]["reference"]
        events = service.search("Observation", [("part-of", study_ref), ("code", "113852")]).total
        study = orjson.loads(service.read(*study_ref.split("/")).body or b"")
        uids = frozenset(i["value"] for i in summary["identifier"])
        found[str(study["identifier"][0]["value"])] = (uids, events or 0)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def echo(port: int, called: str = "KERMA") -> bool:
    """Whether a DICOM peer answers C-ECHO (it is up)."""
    ae = AE(ae_title="PROBE")
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    if not assoc.is_established:
        return False
    assoc.release()
    return True


@contextmanager
def orthanc_running(folder: Path, **config: Any) -> Iterator[tuple[int, int]]:
    """Orthanc (Debian's) as AE ORTHANC with its data in `folder`, up: (DICOM port, HTTP port).
    `config` adds to or replaces its settings."""
    port, http = free_port(), free_port()
    settings = {"Name": "KermaTestPACS", "StorageDirectory": str(folder / "storage"),
                "IndexDirectory": str(folder / "index"), "HttpPort": http,
                "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
                "DicomAet": "ORTHANC", "DicomPort": port, "DicomAlwaysAllowStore": True,
                "Plugins": [], **config}  # fmt: skip
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(settings))
    process = subprocess.Popen([ORTHANC, str(folder / "config.json")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_until(lambda: echo(port, "ORTHANC"), seconds=30)
        yield port, http
    finally:
        process.kill()  # its data goes with the test; its clean stop waits on its timers (2.5 s)
        process.wait(30)


def ingest_directly(paths: list[Path], data_dir: Path) -> tuple[DoseReports, list[str]]:
    """What reading the files from disk gives: dose reports, names quarantined."""
    settings = Settings(data_dir=data_dir)
    store = SqliteStore(settings.sqlite_path)
    ingestor = build_ingestor(store, settings)
    for path in paths:
        ingestor.ingest_file(path)
    reports = dose_reports(build_service(store))
    store.close()
    return reports, [q.name for q in Quarantine(settings.quarantine_dir).items()]
