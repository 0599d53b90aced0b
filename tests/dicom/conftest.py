"""A running DICOM listener over loopback, and a pynetdicom SCU to talk to it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
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
from server.network import DicomListener, start_dicom
from server.store.port import Store

CORPUS = Path(__file__).parent.parent / "data" / "dicom"
SIEMENS_CT = CORPUS / "openrem" / "CT-RDSR-Siemens_Flash-TAP-SS.dcm"


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
