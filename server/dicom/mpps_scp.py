"""MPPS SCP: N-CREATE and N-SET of Modality Performed Procedure Steps (PS3.4 F.7).

Each step's attributes are kept in `KERMA_DATA_DIR/mpps/<SOP Instance UID>.dcm`, written
durably before the answer. When an N-SET finishes a step (COMPLETED or DISCONTINUED) its
merged attributes go to the spool, like a stored object, and become a dose report there.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from pynetdicom import evt
from pynetdicom.dimse_primitives import N_CREATE, N_SET
from pynetdicom.events import Event

from server.dicom.mpps import FINAL_STATES, MPPS_CLASS
from server.dicom.spool import Spool
from server.dicom.status import ERROR_ID_NO_LONGER_UPDATABLE, Status
from server.files import write_durably
from server.logs import log_event

log = logging.getLogger("kerma.dicom")
Answer = tuple[Status | Dataset, Dataset | None]


class MppsSteps:
    """The steps Kerma has been told about, on disk; one writer at a time, whichever listener
    process it is in (`with steps.lock():`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        with open(self.folder / ".lock", "a") as held:  # each open its own lock: threads too
            fcntl.flock(held, fcntl.LOCK_EX)
            yield

    def path(self, uid: str) -> Path:
        return self.folder / f"{uid}.dcm"

    def load(self, uid: str) -> Dataset | None:
        path = self.path(uid)
        return dcmread(path) if path.exists() else None

    def write(self, uid: str, data: bytes) -> None:
        write_durably(self.path(uid), data)


def encode(ds: Dataset, uid: str) -> bytes:
    """A step as a DICOM file whose SOP class says what it is (the spool reader dispatches on it)."""
    ds.SOPClassUID, ds.SOPInstanceUID = MPPS_CLASS, uid
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(MPPS_CLASS)
    ds.file_meta.MediaStorageSOPInstanceUID = UID(uid)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def handlers(
    steps: MppsSteps, spool: Spool, received: Callable[[], None]
) -> list[tuple[evt.EventType, Callable[..., object], list[object]]]:
    return [
        (evt.EVT_N_CREATE, _handle_create, [steps]),
        (evt.EVT_N_SET, _handle_set, [steps, spool, received]),
    ]


def _handle_create(event: Event, steps: MppsSteps) -> Answer:
    request = cast(N_CREATE, event.request)
    if request.AffectedSOPClassUID != MPPS_CLASS:
        return Status.PROCESSING_FAILURE, None
    attributes = event.attribute_list
    uid = request.AffectedSOPInstanceUID or generate_uid()
    status = str(attributes.get("PerformedProcedureStepStatus", ""))
    if not status:
        return _failure(Status.MISSING_ATTRIBUTE, "Performed Procedure Step Status is missing")
    if status != "IN PROGRESS":
        return _failure(
            Status.INVALID_ATTRIBUTE_VALUE, f"a step is created IN PROGRESS, not {status}"
        )
    with steps.lock():
        if steps.path(uid).exists():
            return _failure(Status.DUPLICATE_SOP_INSTANCE, f"step {uid} exists")
        try:
            steps.write(uid, encode(attributes, uid))
        except OSError as e:
            log_event(log, "mpps-write-failed", step=uid, error=e)
            return Status.OUT_OF_RESOURCES, None
    log_event(log, "mpps-created", step=uid, calling_ae=event.assoc.requestor.ae_title)
    answer = Dataset()
    if not request.AffectedSOPInstanceUID:
        answer.AffectedSOPInstanceUID = uid  # the SCU learns the UID Kerma gave the step
    return Status.SUCCESS, answer


def _handle_set(
    event: Event, steps: MppsSteps, spool: Spool, received: Callable[[], None]
) -> Answer:
    uid = str(cast(N_SET, event.request).RequestedSOPInstanceUID or "")
    changes = event.modification_list
    with steps.lock():
        step = steps.load(uid)
        if step is None:
            return _failure(Status.NO_SUCH_OBJECT_INSTANCE, f"no step {uid}")
        if str(step.get("PerformedProcedureStepStatus", "")) in FINAL_STATES:
            answer = _status(Status.PROCESSING_FAILURE, "the step may no longer be updated")
            answer.ErrorID = ERROR_ID_NO_LONGER_UPDATABLE
            return answer, None
        new_status = str(changes.get("PerformedProcedureStepStatus", "IN PROGRESS"))
        if new_status not in ("IN PROGRESS", *FINAL_STATES):
            return _failure(Status.INVALID_ATTRIBUTE_VALUE, f"unknown step status {new_status}")
        for element in changes:
            step[element.tag] = element
        try:
            data = encode(step, uid)
            if new_status in FINAL_STATES:
                spool.put(data)  # first: a failure here leaves the step open, and the SCU retries
            steps.write(uid, data)
        except OSError as e:
            log_event(log, "mpps-write-failed", step=uid, error=e)
            return Status.OUT_OF_RESOURCES, None
    log_event(log, "mpps-set", step=uid, status=new_status)
    if new_status in FINAL_STATES:
        received()
    return Status.SUCCESS, changes


def _failure(status: Status, comment: str) -> Answer:
    return _status(status, comment), None


def _status(status: Status, comment: str) -> Dataset:
    answer = Dataset()
    answer.Status = int(status)
    answer.ErrorComment = comment[:64]  # LO
    return answer
