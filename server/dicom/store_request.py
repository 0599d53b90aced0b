"""A C-STORE request's command set (PS3.7 9.3.1.1), Implicit VR Little Endian, read directly
into pynetdicom's C_STORE primitive: what the listener receives with every object.

pynetdicom decodes every command set into a pydicom Dataset, converts each element and then
sets the primitive from it; the primitive's own setters (which validate the UIDs, the message
ID, the priority) are what this module calls too. A command set with anything else (another
command, an element a C-STORE request does not have, a value of the wrong length) is left to
pynetdicom, which answers it as it always has. tests/dicom/test_store_request.py compares the
primitives of both ways.
"""

from __future__ import annotations

import struct

from pynetdicom.dimse_primitives import C_STORE

from server.dicom.store_response import NO_DATASET

_C_STORE_RQ = b"\x01\x00"  # Command Field 0x0001
_NO_DATASET = struct.pack("<H", NO_DATASET)
# the elements of a C-STORE request, with the length of those of fixed length (UL, US)
_ELEMENTS = {0x0000: 4, 0x0002: None, 0x0100: 2, 0x0110: 2, 0x0700: 2, 0x0800: 2,
             0x1000: None, 0x1030: None, 0x1031: 2}  # fmt: skip
_REQUIRED = {0x0002, 0x0100, 0x0110, 0x0700, 0x0800, 0x1000}


def store_request(command: bytes) -> C_STORE | None:
    """The C-STORE request `command` encodes, or None where pynetdicom must read it."""
    values = _elements(command)
    if values is None or values[0x0100] != _C_STORE_RQ or values[0x0800] == _NO_DATASET:
        return None
    request = C_STORE()
    try:
        request.MessageID = _us(values[0x0110])
        request.AffectedSOPClassUID = _text(values[0x0002], b"\x00 ")
        request.AffectedSOPInstanceUID = _text(values[0x1000], b"\x00 ")
        request.Priority = _us(values[0x0700])
        if 0x1030 in values:
            request.MoveOriginatorApplicationEntityTitle = _text(values[0x1030], b" ")
        if 0x1031 in values:
            request.MoveOriginatorMessageID = _us(values[0x1031])
    except (ValueError, TypeError, UnicodeDecodeError):
        return None  # pynetdicom reads it again and says what is wrong
    return request


def _elements(command: bytes) -> dict[int, bytes] | None:
    """Element number -> value of a command set (group 0000) of known elements, or None."""
    values: dict[int, bytes] = {}
    offset = 0
    while offset < len(command):
        if offset + 8 > len(command):
            return None
        group, element, length = struct.unpack_from("<HHI", command, offset)
        offset += 8
        value = command[offset : offset + length]
        offset += length
        if group or element not in _ELEMENTS or element in values or len(value) != length:
            return None
        if _ELEMENTS[element] not in (None, length):
            return None
        values[element] = value
    return values if values.keys() >= _REQUIRED else None


def _us(value: bytes) -> int:
    return int(struct.unpack("<H", value)[0])


def _text(value: bytes, padding: bytes) -> str:
    return value.rstrip(padding).decode("ascii").strip()
