"""Concepts mapped since sites sent them (issue 20): Length of Reconstructable Volume (DCM
113893) of each CT acquisition, in mm, and Exposure Control Mode (0018,7060) of image headers."""

from __future__ import annotations

import orjson

from server.config import Settings
from server.ingest import build_ingestor
from server.site import build_service
from server.store.port import Store
from tests.dicom.conftest import SIEMENS_CT

GE_CT = SIEMENS_CT.parent / "CT-RDSR-GEPixelMed.dcm"


def test_length_of_reconstructable_volume(store: Store, settings: Settings) -> None:
    result = build_ingestor(store, settings).ingest_file(GE_CT)
    assert result.status == "ingested" and result.study
    events = (
        build_service(store)
        .search(
            "Observation",
            [
                ("part-of", result.study),
                ("code", "http://dicom.nema.org/resources/ontology/DCM|113852"),
            ],
        )
        .matches
    )
    lengths = sorted(
        c["valueQuantity"]["value"]
        for e in events
        for c in orjson.loads(e.body or b"{}").get("component", [])
        if c["code"]["coding"][0]["code"] == "113893"
    )
    # the GE PixelMed RDSR gives 60 mm and 5 mm for its two acquisitions
    assert lengths == [5.0, 60.0]
    [unit] = {
        c["valueQuantity"]["code"]
        for e in events
        for c in orjson.loads(e.body or b"{}").get("component", [])
        if c["code"]["coding"][0]["code"] == "113893"
    }
    assert unit == "mm"


def test_exposure_control_mode_of_image_headers(store: Store, settings: Settings) -> None:
    """Exposure Control Mode (0018,7060) of a radiograph's header: the GE XR220 says MANUAL."""
    result = build_ingestor(store, settings).ingest_file(SIEMENS_CT.parent / "DX-Im-GE_XR220-1.dcm")
    assert result.status == "ingested" and result.study
    [event] = (
        build_service(store)
        .search(
            "Observation",
            [
                ("part-of", result.study),
                ("code", "http://dicom.nema.org/resources/ontology/DCM|113852"),
            ],
        )
        .matches
    )
    [mode] = [c for c in orjson.loads(event.body or b"{}")["component"]
              if c["code"]["coding"][0]["code"] == "ExposureControlMode"]  # fmt: skip
    assert mode["valueString"] == "MANUAL"
    assert mode["code"]["coding"][0]["display"] == "Exposure Control Mode (0018,7060)"
    assert mode["code"]["coding"][0]["system"] == "urn:kerma:dicom-attribute"
