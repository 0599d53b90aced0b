"""A fast reader of SR content trees, straight from the bytes.

pydicom reads a content tree correctly but slowly: every content item becomes a Dataset and
every attribute access converts an element (about 150 µs per item; 3 s for a 14,736-item
fluoroscopy RDSR). This module walks the little-endian byte stream of the Content Sequence
itself, keeps only the attributes a content item has, and builds the same `Item` tree.
Everything else in the file (patient, study, equipment) is still read by pydicom, from the
bytes with the Content Sequence cut out. Anything unusual (big endian, deflate, a malformed
length) raises `Unsupported`, and the caller falls back to pydicom.
"""

from __future__ import annotations

import struct
from typing import Any

from pydicom.charset import convert_encodings, decode_bytes
from pydicom.datadict import dictionary_VR
from pydicom.valuerep import TEXT_VR_DELIMS

from server.dicom.sr import Item, item_values
from server.dicom.sr import concept as concept_key

Parsed = dict[int, Any]  # tag -> bytes, or list[Parsed] for a sequence

CONTENT_SEQUENCE = 0x0040A730
SPECIFIC_CHARACTER_SET = 0x00080005
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_LONG_VRS = {
    b"OB",
    b"OD",
    b"OF",
    b"OL",
    b"OV",
    b"OW",
    b"SQ",
    b"SV",
    b"UC",
    b"UN",
    b"UR",
    b"UT",
    b"UV",
}
_IMPLICIT_LE = "1.2.840.10008.1.2"
_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_TAGS = {
    "concept": 0x0040A043, "value_type": 0x0040A040, "relationship": 0x0040A010,
    "measured": 0x0040A300, "numeric": 0x0040A30A, "units": 0x004008EA, "code": 0x0040A168,
    "text": 0x0040A160, "person": 0x0040A123, "uid": 0x0040A124, "datetime": 0x0040A120,
    "date": 0x0040A121, "time": 0x0040A122, "code_value": 0x00080100, "scheme": 0x00080102,
    "meaning": 0x00080104, "long_code": 0x00080119, "urn_code": 0x00080120,
}  # fmt: skip
_VR_CACHE: dict[int, bytes] = {}  # an implicit-VR file's tag -> its VR, as header() gives it


class Unsupported(ValueError):
    """The bytes are not what this reader handles; read them with pydicom instead."""


def split(data: bytes) -> tuple[bytes, Parsed | None, list[str]]:
    """(the file without its Content Sequence, the sequence's items parsed, the Python codecs
    of its Specific Character Set)."""
    if len(data) < 132 or data[128:132] != b"DICM":
        raise Unsupported("no DICOM preamble")
    meta_end, syntax = _file_meta(data)
    if syntax not in (_IMPLICIT_LE, _EXPLICIT_LE):
        raise Unsupported(f"transfer syntax {syntax}")
    reader = _Reader(data, syntax == _IMPLICIT_LE)
    pos = meta_end
    charsets: list[str] = []
    while pos < len(data):
        start = pos
        tag, vr, length, pos = reader.header(pos)
        if tag == SPECIFIC_CHARACTER_SET:
            charsets = [
                c.strip() for c in data[pos : pos + length].decode("ascii", "replace").split("\\")
            ]
        if tag == CONTENT_SEQUENCE:
            items, end = reader.sequence(pos, length)
            return data[:start] + data[end:], {CONTENT_SEQUENCE: items}, _codecs(charsets)
        if tag > CONTENT_SEQUENCE:
            break
        pos = reader.skip(pos, vr, length)
    return data, None, _codecs(charsets)


def _codecs(charsets: list[str]) -> list[str]:
    """Specific Character Set's terms ("ISO_IR 192") as Python's codecs ("utf_8"), as pydicom
    reads them; once per file (decoding with the terms themselves failed for some, and each
    failure cost an exception and a warning per text value)."""
    return convert_encodings(charsets or ["ISO_IR 6"])


def build(parsed: Parsed, encodings: list[str], root_path: str) -> tuple[Item, ...]:
    """The content items of a parsed Content Sequence, as `Item`s (paths as `Item.of` makes them)."""
    return tuple(
        _item(child, f"{root_path}[{i}]", encodings)
        for i, child in enumerate(parsed.get(CONTENT_SEQUENCE, []))
    )


def _item(raw: Parsed, path: str, encodings: list[str]) -> Item:
    concept = _code(raw.get(_TAGS["concept"]), encodings)
    value_type = _text(raw.get(_TAGS["value_type"]), encodings) or ""
    key = concept_key(concept.scheme, concept.value) if concept else None
    here = f"{path}/{key[0]}:{key[1]}" if key else path or "/"
    values: dict[str, Any] = {}
    if value_type == "NUM":
        measured = raw.get(_TAGS["measured"])
        if measured:
            units = measured[0].get(_TAGS["units"])
            values = {
                "number": _text(measured[0].get(_TAGS["numeric"]), encodings),
                "unit": _text(units[0].get(_TAGS["code_value"]), encodings) if units else None,
            }
    elif value_type == "CODE":
        values = {"code": _code(raw.get(_TAGS["code"]), encodings)}
    elif value_type in ("TEXT", "PNAME"):
        values = {
            "text": _text(raw.get(_TAGS["text" if value_type == "TEXT" else "person"]), encodings)
        }
    elif value_type == "UIDREF":
        values = {"uid": _text(raw.get(_TAGS["uid"]), encodings)}
    elif value_type in ("DATETIME", "DATE", "TIME"):
        values = {
            "datetime": _text(raw.get(_TAGS["datetime"]) or raw.get(_TAGS["date"]), encodings)
        }
    children = tuple(
        _item(child, f"{here}[{i}]", encodings)
        for i, child in enumerate(raw.get(CONTENT_SEQUENCE, []))
    )
    relationship = _text(raw.get(_TAGS["relationship"]), encodings) or ""
    return item_values(here, key, value_type, relationship, values, children)


class _Code:
    def __init__(self, scheme: str, value: str, meaning: str) -> None:
        self.scheme, self.value, self.meaning = scheme, value, meaning


def _code(seq: Any, encodings: list[str]) -> Any:
    """The first item of a code sequence, as scheme/value/meaning strings (None when absent)."""
    if not seq:
        return None
    first = seq[0]
    value = _text(
        first.get(_TAGS["code_value"])
        or first.get(_TAGS["long_code"])
        or first.get(_TAGS["urn_code"]),
        encodings,
    )
    return _Code(
        _text(first.get(_TAGS["scheme"]), encodings) or "",
        value or "",
        _text(first.get(_TAGS["meaning"]), encodings) or "",
    )


def _text(raw: Any, encodings: list[str]) -> str | None:
    if raw is None or isinstance(raw, list):
        return None
    text = decode_bytes(bytes(raw), encodings, TEXT_VR_DELIMS).strip(" \x00")
    return text or None


def _file_meta(data: bytes) -> tuple[int, str]:
    """End of the file meta group (always explicit VR little endian) and the transfer syntax."""
    reader = _Reader(data, implicit=False)
    pos, syntax = 132, ""
    while pos + 8 <= len(data):
        tag, _, length, value = reader.header(pos)
        if tag >> 16 != 0x0002:
            return pos, syntax
        if tag == 0x00020010:
            syntax = data[value : value + length].decode("ascii").strip(" \x00")
        pos = value + length
    raise Unsupported("file ends in the file meta group")


class _Reader:
    def __init__(self, data: bytes, implicit: bool) -> None:
        self.data = data
        self.view = memoryview(data)  # values are slices of it, not copies
        self.implicit = implicit

    def header(self, pos: int) -> tuple[int, bytes, int, int]:
        """(tag, VR, value length, value offset) of the element at `pos`."""
        data = self.data
        if pos + 8 > len(data):
            raise Unsupported("truncated element")
        group, element = struct.unpack_from("<HH", data, pos)
        tag = group << 16 | element
        if group == 0xFFFE or self.implicit:
            (length,) = struct.unpack_from("<I", data, pos + 4)
            if length == _UNDEFINED and group != 0xFFFE:
                return tag, b"SQ", length, pos + 8
            return tag, _VR_CACHE.get(tag) or _implicit_vr(tag), length, pos + 8
        vr = data[pos + 4 : pos + 6]
        if vr in _LONG_VRS:
            (length,) = struct.unpack_from("<I", data, pos + 8)
            return tag, vr, length, pos + 12
        (length,) = struct.unpack_from("<H", data, pos + 6)
        return tag, vr, length, pos + 8

    def skip(self, pos: int, vr: bytes, length: int) -> int:
        if length != _UNDEFINED:
            return pos + length
        if vr in (b"SQ", b"UN"):
            return self.sequence(pos, length)[1]
        raise Unsupported(f"undefined length on VR {vr!r}")

    def sequence(self, pos: int, length: int) -> tuple[list[Parsed], int]:
        """The items of a sequence whose value starts at `pos`, and where the sequence ends."""
        end = pos + length if length != _UNDEFINED else len(self.data)
        items: list[Parsed] = []
        while pos < end:
            tag, _, item_length, pos = self.header(pos)
            if tag == _SEQUENCE_END:
                return items, pos
            if tag != _ITEM:
                raise Unsupported(f"expected an item, found tag {tag:08X}")
            item, pos = self.dataset(pos, item_length)
            items.append(item)
        if length == _UNDEFINED:
            raise Unsupported("sequence without its delimiter")
        return items, end

    def dataset(self, pos: int, length: int) -> tuple[Parsed, int]:
        end = pos + length if length != _UNDEFINED else len(self.data)
        parsed: Parsed = {}
        while pos < end:
            tag, vr, value_length, pos = self.header(pos)
            if tag == _ITEM_END:
                return parsed, pos
            if vr == b"SQ" or (value_length == _UNDEFINED and vr == b"UN"):
                parsed[tag], pos = self.sequence(pos, value_length)
                continue
            if value_length == _UNDEFINED or pos + value_length > len(self.data):
                raise Unsupported(f"bad length for tag {tag:08X}")
            parsed[tag] = self.view[pos : pos + value_length]
            pos += value_length
        if length == _UNDEFINED:
            raise Unsupported("item without its delimiter")
        return parsed, end


def _implicit_vr(tag: int) -> bytes:
    """The dictionary's VR of a tag (the first of several: "US or SS"), or UN; kept."""
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        vr = "UN"
    _VR_CACHE[tag] = vr.encode()[:2]
    return _VR_CACHE[tag]


def cut_short(data: bytes) -> str | None:
    """Why the file looks cut short, or None: walks every element of a little-endian file and
    says where one needs more bytes than the file has, or where a sequence or item of
    undefined length meets the end of the file before its delimiter. pydicom reads such a file
    without a word and gives what it found before the cut. None also when this walk cannot
    tell (another transfer syntax, encapsulated pixel data, a structure it does not know)."""
    try:
        meta_end, syntax = _file_meta(data)
    except (Unsupported, struct.error, UnicodeDecodeError):
        return None
    if syntax not in (_IMPLICIT_LE, _EXPLICIT_LE):
        return None
    reader, pos = _Reader(data, syntax == _IMPLICIT_LE), meta_end
    try:
        while pos < len(data):
            if len(data) - pos < 8:
                return (
                    "the file ends inside an element's header" if data[pos:].strip(b"\0") else None
                )
            tag, vr, length, pos = reader.header(pos)
            pos = reader.skip(pos, vr, length)
            if pos > len(data):
                return f"element ({tag >> 16:04X},{tag & 0xFFFF:04X}) needs {pos - len(data)} bytes more than the file has"
    except Unsupported as e:
        return str(e) if str(e) in _CUT else None
    except struct.error:
        return "the file ends inside an element's header"
    return None


# what the walk raises when it met the end of the file
_CUT = {"truncated element", "sequence without its delimiter", "item without its delimiter"}
