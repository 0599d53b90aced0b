"""The command set of a C-STORE response (PS3.7 9.3.1.2), Implicit VR Little Endian (PS3.7
6.3.1), written directly for the plain response the listener sends for every object: group
length, SOP class, command field, message ID responded to, no dataset, status, SOP instance.

pynetdicom builds it as a pydicom Dataset from the primitive, validating each UID again,
encodes it once for the group length and once to send: about a tenth of the listener's work
per object. A response with more (an error comment, an offending element) goes pynetdicom's
way. tests/dicom/test_store_response.py compares the two byte for byte.
"""

from __future__ import annotations

import struct

from pynetdicom.dimse_primitives import C_STORE

from server.dicom.part10 import uid_value

_C_STORE_RSP = 0x8001  # Command Field
NO_DATASET = 0x0101  # Command Data Set Type: no data set follows (requests read it too)


def store_response_command(response: C_STORE) -> bytes | None:
    """The encoded command set of `response`, or None where pynetdicom must encode it."""
    if response.OffendingElement is not None or response.ErrorComment is not None:
        return None
    sop_class, sop_instance = response.AffectedSOPClassUID, response.AffectedSOPInstanceUID
    responded_to, status = response.MessageIDBeingRespondedTo, response.Status
    if sop_class is None or sop_instance is None or responded_to is None or status is None:
        return None
    body = b"".join((
        _element(0x0002, uid_value(sop_class)),
        _element(0x0100, struct.pack("<H", _C_STORE_RSP)),
        _element(0x0120, struct.pack("<H", responded_to)),
        _element(0x0800, struct.pack("<H", NO_DATASET)),
        _element(0x0900, struct.pack("<H", status)),
        _element(0x1000, uid_value(sop_instance)),
    ))  # fmt: skip
    return _element(0x0000, struct.pack("<I", len(body))) + body


def _element(element: int, value: bytes) -> bytes:
    """A command element (group 0000): tag, 4-byte length, value (Implicit VR)."""
    return struct.pack("<HHI", 0x0000, element, len(value)) + value
