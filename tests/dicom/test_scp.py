"""The Storage SCP over loopback: Success only after the spool holds the bytes; refusals."""

from __future__ import annotations

import io
import logging
import shutil
import time
from dataclasses import replace
from typing import Any

import pydicom
import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian, JPEGBaseline8Bit
from pynetdicom import AE, evt

from server.config import Settings
from server.dicom.status import Status
from server.dicom.transport import NO_DELAY
from server.fhir import FhirService
from server.fhir.mapping.codes import AE_TITLE_SYSTEM
from server.network import DicomListener, start_dicom
from server.store.port import Store
from tests.dicom.conftest import CORPUS, SIEMENS_CT, Connect, summary_of, wait_until

CT_RDSR = "1.2.840.10008.5.1.4.1.1.88.67"


def _component(resource: dict[str, Any], code: str) -> dict[str, Any]:
    return next(c for c in resource["component"] if c["code"]["coding"][0]["code"] == code)


def test_echo(connect: Connect) -> None:
    assoc = connect()
    assert assoc.is_established
    assert assoc.send_c_echo().Status == Status.SUCCESS


def test_a_stored_rdsr_is_spooled_then_becomes_a_dose_report(
    connect: Connect, listener: DicomListener, service: FhirService
) -> None:
    listener.worker.stop()  # hold processing, to look at the spool
    ds = pydicom.dcmread(SIEMENS_CT)
    status = connect().send_c_store(ds)
    assert status.Status == Status.SUCCESS
    [spooled] = listener.spool.pending()
    kept = pydicom.dcmread(spooled)
    assert kept.SOPInstanceUID == ds.SOPInstanceUID
    assert kept.file_meta.SourceApplicationEntityTitle == "MODALITY"
    assert kept.ContentSequence == ds.ContentSequence  # the dataset, byte for byte as sent

    assert listener.worker.drain() == 1
    assert listener.spool.pending() == []
    dlp_total = _component(summary_of(service, ds.StudyInstanceUID), "113813")
    assert dlp_total["valueQuantity"]["value"] == pytest.approx(724.52, abs=0.005)
    assert dlp_total["valueQuantity"]["code"] == "mGy.cm"


def test_the_worker_processes_what_arrives(
    connect: Connect, listener: DicomListener, service: FhirService
) -> None:
    ds = pydicom.dcmread(SIEMENS_CT)
    assert connect().send_c_store(ds).Status == Status.SUCCESS
    wait_until(lambda: service.search("ImagingStudy", []).total == 1)
    wait_until(lambda: listener.spool.pending() == [])


@pytest.mark.parametrize("syntax", [DeflatedExplicitVRLittleEndian, JPEGBaseline8Bit])
def test_compressed_and_deflated_objects_are_accepted_as_sent(
    connect: Connect, listener: DicomListener, service: FhirService, syntax: str
) -> None:
    """Pixel data are never decoded: a JPEG image is spooled as it came and its header read."""
    ds = pydicom.dcmread(CORPUS / "openrem" / "DX-Im-GE_XR220-1.dcm")
    if syntax == JPEGBaseline8Bit:
        # a JPEG stream Kerma does not decode: the header is what counts
        ds.PixelData = pydicom.encaps.encapsulate([b"\xff\xd8\xff\xd9"])
        ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = syntax
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(ds.SOPClassUID, [syntax])
    assoc = ae.associate("127.0.0.1", listener.port, ae_title="KERMA", evt_handlers=[NO_DELAY])
    assert assoc.send_c_store(ds).Status == Status.SUCCESS
    assoc.release()
    wait_until(lambda: listener.spool.pending() == [])
    assert summary_of(service, ds.StudyInstanceUID)["meta"]["tag"][0]["code"] == "image-header"


def test_spool_failure_answers_out_of_resources_and_never_success(
    connect: Connect, listener: DicomListener, service: FhirService
) -> None:
    listener.worker.stop()
    assoc = connect()
    shutil.rmtree(listener.spool.folder)  # the disk refuses: nothing can be written
    status = assoc.send_c_store(pydicom.dcmread(SIEMENS_CT))
    assert status.Status == Status.OUT_OF_RESOURCES == 0xA700
    assert service.search("ImagingStudy", []).total == 0


def _allowing(settings: Settings, store: Store, allowed: str) -> DicomListener:
    return start_dicom(replace(settings, dicom_allowed_aes=allowed), store)


def test_unknown_calling_ae_is_rejected_and_logged(
    dicom_settings: Settings, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    running = _allowing(dicom_settings, store, "CT_ROOM_1, XA_ROOM_2")
    try:
        caplog.set_level(logging.INFO, logger="kerma.dicom")
        ae = AE(ae_title="STRANGER")
        ae.add_requested_context(CT_RDSR)
        assoc = ae.associate("127.0.0.1", running.port, ae_title="KERMA")
        assert assoc.is_rejected
        rejection = assoc.acceptor.primitive
        # rejected-permanent, by the service user, calling AE title not recognised
        assert (rejection.result, rejection.result_source, rejection.diagnostic) == (1, 1, 3)
        assert "association-rejected calling_ae=STRANGER" in caplog.text

        ae = AE(ae_title="XA_ROOM_2")
        ae.add_requested_context(CT_RDSR)
        assoc = ae.associate("127.0.0.1", running.port, ae_title="KERMA")
        assert assoc.is_established
        assoc.release()
    finally:
        running.stop()


def test_devices_registered_over_the_api_may_send(
    dicom_settings: Settings, store: Store, service: FhirService
) -> None:
    device = {
        "resourceType": "Device",
        "identifier": [{"system": AE_TITLE_SYSTEM, "value": "MG_ROOM_3"}],
        "status": "active",
    }
    service.create("Device", device)
    retired = {**device, "identifier": [{"system": AE_TITLE_SYSTEM, "value": "OLD_CT"}]}
    service.create("Device", {**retired, "status": "inactive"})
    running = _allowing(dicom_settings, store, "")  # registered devices only
    try:
        for title, allowed in (("MG_ROOM_3", True), ("OLD_CT", False), ("CT_ROOM_1", False)):
            ae = AE(ae_title=title)
            ae.add_requested_context(CT_RDSR)
            assoc = ae.associate("127.0.0.1", running.port, ae_title="KERMA")
            assert assoc.is_established == allowed, title
            if allowed:
                assoc.release()
    finally:
        running.stop()


def test_objects_left_in_the_spool_are_processed_at_start(
    dicom_settings: Settings, store: Store, service: FhirService
) -> None:
    first = start_dicom(dicom_settings, store)
    first.worker.stop()
    buffer = io.BytesIO()
    pydicom.dcmread(SIEMENS_CT).save_as(buffer, enforce_file_format=True)
    first.spool.put(buffer.getvalue())
    first.stop()
    assert service.search("ImagingStudy", []).total == 0

    second = start_dicom(dicom_settings, store)
    try:
        wait_until(lambda: service.search("ImagingStudy", []).total == 1)
        wait_until(lambda: second.spool.pending() == [])
    finally:
        second.stop()


def test_a_dose_report_comes_in_one_pdu(connect: Connect) -> None:
    """Kerma lets a sender send PDUs of up to 1 MiB: a dose report in one P-DATA-TF, not cut
    in 16 KB pieces that are each decoded and passed between threads."""
    sent: list[int] = []
    assoc = connect()
    assoc.bind(evt.EVT_PDU_SENT, lambda event: sent.append(len(event.pdu.encode())))
    ds = pydicom.dcmread(SIEMENS_CT)
    assert assoc.acceptor.maximum_length == 1 << 20
    assert assoc.send_c_store(ds).Status == Status.SUCCESS
    command, dataset = sent  # the C-STORE-RQ's command set, then the whole dataset
    assert dataset > 16384 and command < 1024


def test_a_listener_stops_at_once(dicom_settings: Settings, store: Store) -> None:
    """The accept loop looks for a stop as often as an idle association does (IDLE_WAIT_S):
    socketserver's own 0.5 s made every stop of kerma serve's listener wait that long."""
    took = []
    for _ in range(5):
        listener = start_dicom(dicom_settings, store)
        started = time.monotonic()
        listener.stop()
        took.append(time.monotonic() - started)
    assert sorted(took)[2] < 0.25, took  # the median; it was 0.45-0.5 s
