"""A device heard over DICOM: the calling AE title of its association becomes the Device's
AE title identifier, and the Device then claims and meets the IG's Modality Device profile."""

from __future__ import annotations

from typing import Any

import orjson
from pydicom import dcmread

from server.dicom.status import Status
from server.fhir.mapping import DEVICE_PROFILE
from tests.dicom.conftest import SIEMENS_CT, wait_until
from tests.fhir.test_conformance import _errors


def test_a_device_heard_over_dicom_claims_and_meets_the_device_profile(
    connect: Any, listener: Any, service: Any
) -> None:
    assert connect(ae_title="CT_ROOM_2").send_c_store(dcmread(SIEMENS_CT)).Status == Status.SUCCESS
    wait_until(lambda: listener.spool.pending() == [] and service.search("Device", []).matches)
    [stored] = service.search("Device", []).matches
    device = orjson.loads(stored.body or b"{}")
    ae = [
        i
        for i in device["identifier"]
        if i.get("type", {}).get("coding", [{}])[0].get("code") == "application-entity"
    ]
    assert [i["value"] for i in ae] == ["CT_ROOM_2"]
    assert device["meta"]["profile"] == [DEVICE_PROFILE] and _errors(device) == []
