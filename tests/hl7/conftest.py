"""An HL7 handler over a fresh store, a running MLLP listener, and message helpers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from server.config import Settings
from server.fhir import FhirService
from server.hl7.listener import Hl7Listener
from server.ingest.hl7 import Hl7Handler, build_handler
from server.network import start_hl7
from server.store.port import Store

SAMPLES = Path(__file__).parent.parent / "data" / "hl7"
# the Siemens CT RDSR of the corpus (tests.dicom.conftest.SIEMENS_CT): patient 123456 without
# issuer, accession ACC12345601, this study
SIEMENS_STUDY_UID = "1.3.6.1.4.1.5962.99.1.2662687737.2058515598.1471541535737.3.0"


@pytest.fixture
def store(any_store: Store) -> Store:
    """HL7 tests run on every store adapter: SQLite and MongoDB (mongomock, or a real server)."""
    return any_store


@pytest.fixture
def hl7_settings(settings: Settings) -> Settings:
    return replace(settings, hl7_port=0, ae_title="KERMA")


@pytest.fixture
def handler(hl7_settings: Settings, store: Store) -> Hl7Handler:
    return build_handler(store, hl7_settings)


@pytest.fixture
def site(settings: Settings) -> Settings:
    """A site whose DICOM objects without an issuer carry the HIS's IDs (authority HOSP)."""
    return replace(settings, patient_id_issuer="HOSP", hl7_port=0)


@pytest.fixture
def adt(site: Settings, store: Store) -> Hl7Handler:
    return build_handler(store, site)


@pytest.fixture
def mllp(hl7_settings: Settings, store: Store) -> Iterator[Hl7Listener]:
    running = start_hl7(hl7_settings, store)
    yield running
    running.stop()


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def msa(answer: bytes) -> list[str]:
    """The fields of the ACK's MSA segment: ["MSA", code, control id, text]."""
    for segment in answer.strip(b"\x0b\x1c\r").split(b"\r"):
        if segment.startswith(b"MSA"):
            return [*segment.decode().split("|"), "", ""]
    raise AssertionError(f"no MSA in {answer!r}")


def err(answer: bytes) -> str:
    """The ACK's ERR segment ("" when there is none)."""
    found = [s for s in answer.strip(b"\r").split(b"\r") if s.startswith(b"ERR")]
    return found[0].decode() if found else ""


def message(*segments: str) -> bytes:
    return "\r".join(segments).encode() + b"\r"


def msh(event: str, control: str, version: str = "2.5.1") -> str:
    return f"MSH|^~\\&|HIS|HOSP|KERMA|RAD|20261126101500||{event}|{control}|P|{version}"


def patients(service: FhirService, identifier: str) -> list[dict[str, Any]]:
    found = service.search("Patient", [("identifier", identifier)]).matches
    return [orjson.loads(s.body or b"") for s in found]


def body(service: FhirService, ref: str) -> dict[str, Any]:
    return orjson.loads(service.read(*ref.split("/")[:2]).body or b"")  # type: ignore[no-any-return]
