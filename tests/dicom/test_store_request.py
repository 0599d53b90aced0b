"""A C-STORE request's command set read directly (store_request.py) gives the primitive that
pynetdicom's own decoding gives; what it does not know it leaves to pynetdicom; the listener
gathers the dataset that follows and hands the request on as pynetdicom does."""

from __future__ import annotations

import io
import queue
import types

import pydicom
import pytest
from pynetdicom.dimse_messages import C_ECHO_RQ, C_STORE_RQ, DIMSEMessage
from pynetdicom.dimse_primitives import C_ECHO, C_STORE
from pynetdicom.dsutils import encode
from pynetdicom.pdu_primitives import P_DATA

from server.dicom import reactor
from server.dicom.status import Status
from server.dicom.store_request import store_request
from tests.dicom.conftest import SIEMENS_CT, Connect

RDSR = "1.2.840.10008.5.1.4.1.1.88.67"
FIELDS = ("MessageID", "AffectedSOPClassUID", "AffectedSOPInstanceUID", "Priority",
          "MoveOriginatorApplicationEntityTitle", "MoveOriginatorMessageID")  # fmt: skip


def _command(primitive: C_STORE | C_ECHO) -> bytes:
    message = C_STORE_RQ() if isinstance(primitive, C_STORE) else C_ECHO_RQ()
    message.primitive_to_message(primitive)
    return bytes(encode(message.command_set, True, True))


def _by_pynetdicom(command: bytes) -> C_STORE:
    pdata = P_DATA()
    pdata.presentation_data_value_list = [[1, b"\x03" + command], [1, b"\x02" + b"\0\0"]]
    message = DIMSEMessage()
    assert message.decode_msg(pdata)
    return message.message_to_primitive()  # type: ignore[return-value]


def _request(instance: str, message_id: int, priority: int, origin: str | None = None,
             origin_id: int | None = None) -> C_STORE:  # fmt: skip
    request = C_STORE()
    request.MessageID = message_id
    request.AffectedSOPClassUID = RDSR
    request.AffectedSOPInstanceUID = instance
    request.Priority = priority
    request.MoveOriginatorApplicationEntityTitle = origin
    request.MoveOriginatorMessageID = origin_id
    request.DataSet = io.BytesIO(b"\0\0")
    return request


@pytest.mark.parametrize(
    "request_",
    [
        _request("1.2.3.4.5", 1, 0),  # an odd UID: NUL-padded
        _request("1.2.826.0.1.3680043.8.498.12345678901234567890", 65535, 2),
        _request("2.25.77", 7, 1, "PACS", 12),  # sent on behalf of a C-MOVE
        _request("2.25.7", 8, 0, "ODD"),
        _request("1.2.x", 9, 0),  # not a valid UID: both read it as it is
    ],
)
def test_it_reads_what_pynetdicom_reads(request_: C_STORE) -> None:
    command = _command(request_)
    mine, theirs = store_request(command), _by_pynetdicom(command)
    assert mine is not None
    assert [getattr(mine, f) for f in FIELDS] == [getattr(theirs, f) for f in FIELDS]
    assert mine.AffectedSOPClassUID == RDSR and mine.MessageID == request_.MessageID


def test_what_it_does_not_know_is_left_to_pynetdicom() -> None:
    echo = C_ECHO()
    echo.MessageID = 1
    echo.AffectedSOPClassUID = "1.2.840.10008.1.1"
    store = _command(_request("1.2.3", 1, 0))
    assert store_request(_command(echo)) is None  # another command
    assert store_request(store[:-3]) is None  # cut short
    assert store_request(store + b"\x00\x00\x02\x09\x02\x00\x00\x00ok") is None  # (0000,0902)
    no_dataset = store.replace(
        b"\x00\x08\x02\x00\x00\x00\x01\x00", b"\x00\x08\x02\x00\x00\x00\x01\x01"
    )
    assert no_dataset != store and store_request(no_dataset) is None
    not_ascii = store.replace(b"1.2.3\x00", b"1.2.\xff\x00")
    assert not_ascii != store and store_request(not_ascii) is None  # pynetdicom says why


def test_the_listener_reads_stores_so(connect: Connect, monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[str] = []
    to_primitive = DIMSEMessage.message_to_primitive

    def counted(message: DIMSEMessage) -> object:
        decoded.append(type(message).__name__)  # the listener's requests, the test's answers
        return to_primitive(message)

    monkeypatch.setattr(DIMSEMessage, "message_to_primitive", counted)
    ds = pydicom.dcmread(SIEMENS_CT)
    assoc = connect()
    assert [assoc.send_c_store(ds).Status for _ in range(3)] == [Status.SUCCESS] * 3
    assert assoc.send_c_echo().Status == Status.SUCCESS
    assoc.release()
    requests = [name for name in decoded if name.endswith("_RQ")]
    assert requests == ["C_ECHO_RQ"]  # the stores never went through pynetdicom's decoding


def _dimse() -> reactor._WaitingDimse:
    dimse = reactor._WaitingDimse.__new__(reactor._WaitingDimse)
    dimse.msg_queue = queue.Queue()
    dimse._assoc = types.SimpleNamespace(dul=types.SimpleNamespace(event_queue=queue.Queue()))
    dimse._storing = (3, _request("1.2.3", 1, 0), io.BytesIO())
    return dimse


def test_the_dataset_is_gathered_up_to_its_last_fragment() -> None:
    dimse = _dimse()
    dimse._gather([(3, b"\x00" + b"ab"), (3, b"\x00" + b"cd")])
    assert dimse.msg_queue.empty()
    dimse._gather([(3, b"\x02" + b"ef")])
    context_id, request = dimse.msg_queue.get_nowait()
    assert context_id == 3 and request._context_id == 3
    assert request.DataSet.getvalue() == b"abcdef" and dimse._storing is None


def test_a_command_inside_a_dataset_aborts() -> None:
    dimse = _dimse()
    dimse._gather([(3, b"\x00" + b"ab"), (3, b"\x03" + b"command")])
    assert dimse.msg_queue.empty() and dimse._storing is None
    assert dimse.dul.event_queue.get_nowait() == "Evt19"
