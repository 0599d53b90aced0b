"""The C-STORE response's command set written directly (store_response.py) is, byte for byte,
what pynetdicom encodes from the same primitive; what it cannot write goes pynetdicom's way."""

from __future__ import annotations

import pydicom
import pytest
from pynetdicom.dimse_messages import C_STORE_RSP
from pynetdicom.dimse_primitives import C_STORE

from server.dicom.status import Status
from server.dicom.store_response import store_response_command
from tests.dicom.conftest import SIEMENS_CT, Connect

RDSR = "1.2.840.10008.5.1.4.1.1.88.67"
CT = "1.2.840.10008.5.1.4.1.1.2"


def _response(sop_class: str, instance: str, responded_to: int, status: int) -> C_STORE:
    response = C_STORE()
    response.MessageIDBeingRespondedTo = responded_to
    response.AffectedSOPClassUID = sop_class
    response.AffectedSOPInstanceUID = instance
    response.Status = status
    return response


def _pynetdicom(response: C_STORE) -> list[tuple[int, bytes]]:
    message = C_STORE_RSP()
    message.primitive_to_message(response)
    return [pdv for p in message.encode_msg(7, 16384) for pdv in p.presentation_data_value_list]


@pytest.mark.parametrize(
    ("sop_class", "instance", "responded_to", "status"),
    [
        (RDSR, "1.2.3.4.5", 1, Status.SUCCESS),  # odd UID lengths: padded with NUL
        (CT, "1.2.826.0.1.3680043.8.498.12345678901234567890", 65535, Status.SUCCESS),
        (RDSR, "2.25.1234", 42, Status.OUT_OF_RESOURCES),
        (RDSR, "2.25.12", 3, 0xB000),  # a warning
    ],
)
def test_it_writes_what_pynetdicom_writes(
    sop_class: str, instance: str, responded_to: int, status: int
) -> None:
    response = _response(sop_class, instance, responded_to, status)
    command = store_response_command(response)
    assert command is not None
    assert [(7, b"\x03" + command)] == _pynetdicom(response)


def test_a_response_with_more_is_left_to_pynetdicom() -> None:
    with_comment = _response(RDSR, "1.2.3", 1, 0xC000)
    with_comment.ErrorComment = "cannot understand"
    assert store_response_command(with_comment) is None
    with_offender = _response(RDSR, "1.2.3", 1, 0xA900)
    with_offender.OffendingElement = [0x00100010]
    assert store_response_command(with_offender) is None
    assert store_response_command(C_STORE()) is None  # nothing to respond to


def test_the_listener_answers_a_store_so(connect: Connect, monkeypatch: pytest.MonkeyPatch) -> None:
    by_pynetdicom: list[object] = []
    encode = C_STORE_RSP.primitive_to_message

    def counted(message: C_STORE_RSP, primitive: C_STORE) -> None:
        by_pynetdicom.append(primitive)
        encode(message, primitive)

    monkeypatch.setattr(C_STORE_RSP, "primitive_to_message", counted)
    ds = pydicom.dcmread(SIEMENS_CT)
    assoc = connect()
    answers = [assoc.send_c_store(ds) for _ in range(3)]
    assoc.release()
    assert [a.Status for a in answers] == [Status.SUCCESS] * 3
    assert by_pynetdicom == []
