"""Concepts mapped since sites sent them (issue 20): Length of Reconstructable Volume (DCM
113893) of each CT acquisition, in mm, and Exposure Control Mode (0018,7060) of image headers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from server.config import Settings
from server.ingest import build_ingestor
from server.site import build_service
from server.store.port import Store
from tests.dicom.conftest import SIEMENS_CT

DCM = "http://dicom.nema.org/resources/ontology/DCM"
GE_CT = SIEMENS_CT.parent / "CT-RDSR-GEPixelMed.dcm"


def _components(store: Store, settings: Settings, path: Path, code: str) -> list[dict[str, Any]]:
    """The components of that code of the irradiation events Kerma made of the file."""
    result = build_ingestor(store, settings).ingest_file(path)
    assert result.status == "ingested" and result.study
    pairs = [("part-of", result.study), ("code", f"{DCM}|113852")]
    events = build_service(store).search("Observation", pairs).matches
    return [c for e in events for c in orjson.loads(e.body or b"{}").get("component", [])
            if c["code"]["coding"][0]["code"] == code]  # fmt: skip


def test_length_of_reconstructable_volume(store: Store, settings: Settings) -> None:
    lengths = _components(store, settings, GE_CT, "113893")
    # the GE PixelMed RDSR gives 60 mm and 5 mm for its two acquisitions
    assert sorted(c["valueQuantity"]["value"] for c in lengths) == [5.0, 60.0]
    assert {c["valueQuantity"]["code"] for c in lengths} == {"mm"}


def test_exposure_control_mode_of_image_headers(store: Store, settings: Settings) -> None:
    """Exposure Control Mode (0018,7060) of a radiograph's header: the GE XR220 says MANUAL."""
    [mode] = _components(store, settings, SIEMENS_CT.parent / "DX-Im-GE_XR220-1.dcm",
                         "ExposureControlMode")  # fmt: skip
    assert mode["valueString"] == "MANUAL"
    assert mode["code"]["coding"][0]["display"] == "Exposure Control Mode (0018,7060)"
    assert mode["code"]["coding"][0]["system"] == "urn:kerma:dicom-attribute"
