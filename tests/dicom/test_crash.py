"""kill -9 of every process of `kerma serve` in the middle of a stream (a crash): every object
that got Success is in the store afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import orjson
import pydicom
import pytest
from pydicom.uid import generate_uid
from pynetdicom import AE

from server.dicom.status import Status
from server.dicom.transport import NO_DELAY
from server.site import build_service
from server.store.sqlite import SqliteStore
from tests.conftest import kerma_serve
from tests.dicom.conftest import CORPUS, echo, free_port, wait_until

OBJECTS = 250
KILL_AFTER = 100
RDSR = CORPUS / "openrem" / "CT-RDSR-Siemens_Flash-TAP-SS.dcm"
RDSR_CLASS = "1.2.840.10008.5.1.4.1.1.88.67"


def _kerma_serve(
    data_dir: Path, dicom_port: int
) -> AbstractContextManager[subprocess.Popen[bytes]]:
    return kerma_serve(
        data_dir,
        lambda: echo(dicom_port),
        http_port=str(free_port()),
        dicom_port=str(dicom_port),
        dicom_processes="2",  # the listener in processes of its own, beside the spool worker
        hl7_port="0",
    )


def _objects() -> Iterator[pydicom.Dataset]:
    template = pydicom.dcmread(RDSR)
    for _ in range(OBJECTS):
        ds = template.copy()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        yield ds


@pytest.mark.usefixtures("children_tmpdir")  # what kill -9 leaves in TMPDIR goes with the test
def test_every_acknowledged_object_survives_kill_9(tmp_path: Path) -> None:
    port = free_port()
    acknowledged: list[str] = []
    with _kerma_serve(tmp_path, port) as server:
        ae = AE(ae_title="MODALITY")
        ae.dimse_timeout = 5  # the store after the kill waits this long for an answer (30 s)
        ae.add_requested_context(RDSR_CLASS)
        assoc = ae.associate("127.0.0.1", port, ae_title="KERMA", evt_handlers=[NO_DELAY])
        for ds in _objects():
            if len(acknowledged) == KILL_AFTER:
                # mid-stream, while the worker is storing: every process of the service (the
                # listener processes answer C-STOREs, the spool worker stores them)
                os.killpg(server.pid, signal.SIGKILL)
            status = assoc.send_c_store(ds) if assoc.is_established else None
            if status is None or status.get("Status") != Status.SUCCESS:
                break
            acknowledged.append(ds.StudyInstanceUID)
        assoc.abort()
    assert KILL_AFTER <= len(acknowledged) < OBJECTS
    left = len(list((tmp_path / "spool").glob("*.dcm")))
    print(f"acknowledged {len(acknowledged)}, left in the spool by the kill: {left}")

    with _kerma_serve(tmp_path, port):  # the restart processes what the spool kept
        # a spool file goes only after its commit: an empty spool means all is stored
        wait_until(lambda: not list((tmp_path / "spool").glob("*.dcm")), seconds=120)
    store = SqliteStore(tmp_path / "kerma.sqlite3")
    try:
        stored = _stored_study_uids(store)
    finally:
        store.close()
    missing = [uid for uid in acknowledged if uid not in stored]
    assert missing == []


def _stored_study_uids(store: SqliteStore) -> set[str]:
    found = build_service(store).search("ImagingStudy", [("_count", "1000")])
    return {
        str(orjson.loads(s.body or b"")["identifier"][0]["value"]).removeprefix("urn:oid:")
        for s in found.matches
    }
