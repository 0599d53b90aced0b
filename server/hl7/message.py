"""An HL7 v2 message as Kerma reads it: python-hl7's parser, with forgiving field access.

python-hl7 parses a message in about 0.2 ms; hl7apy, measured here, takes 11 ms for an ADT^A40
(2 ms for two segments alone), which would leave no room for the 300 applied messages a second
one connection must carry. What hl7apy adds, validation, wrongly rejects valid ORM^O01; the
fields Kerma needs are checked where they are used instead.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import hl7

from server.mappings import read_yaml


class Malformed(Exception):
    """Bytes that are not an HL7 v2 message Kerma can read (answered with AR)."""

    def __init__(self, reason: str, code: str = "100") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code  # HL7 table 0357


@dataclass(frozen=True)
class Message:
    text: str
    parsed: Any  # hl7.Message
    # segments by name, built once: python-hl7 finds a segment by scanning the whole message,
    # which made reading n OBX take n² steps (4,000 OBX: 70 s of CPU)
    segments: Mapping[str, Sequence[Any]]

    def get(self, path: str) -> str:
        """The value at a python-hl7 path ("PID.F3.R1.C4", "OBX3.F5"), unescaped; "" when
        absent."""
        try:
            name, number, *rest = hl7.Accessor.parse_key(path)
            value = self.segments[name][number - 1].extract_field(number, *rest)
        except (IndexError, KeyError, ValueError):
            return ""
        return str(value).strip()

    def count(self, segment: str) -> int:
        return len(self.segments.get(segment, ()))

    def repeats(self, path: str) -> int:
        """How many repetitions the field at `path` ("PID.F3") holds."""
        name, number, field, *_ = hl7.Accessor.parse_key(path)
        try:
            return len(self.segments[name][number - 1][field])
        except (IndexError, KeyError):
            return 0

    @property
    def event(self) -> str:
        """MSH-9 as "type^trigger" ("ADT^A40")."""
        return f"{self.get('MSH.F9.R1.C1')}^{self.get('MSH.F9.R1.C2')}"

    @property
    def control_id(self) -> str:
        return self.get("MSH.F10")

    @property
    def version(self) -> str:
        return self.get("MSH.F12.R1.C1")

    @property
    def sender(self) -> str:
        return f"{self.get('MSH.F3')}|{self.get('MSH.F4')}"


def parse(raw: bytes) -> Message:
    """Decode by MSH-18 and parse; Malformed when there is no MSH or it cannot be split."""
    return _parsed(_text(raw))


def parse_header(raw: bytes) -> Message:
    """The MSH segment alone, as a Message: enough to key, answer or refuse a message without
    the cost of parsing all of it."""
    return _parsed(_text(raw).split("\r", 1)[0])


def segment_count(raw: bytes) -> int:
    return _text(raw).count("\r") + 1


def _text(raw: bytes) -> str:
    text = decode(raw).replace("\r\n", "\r").replace("\n", "\r").strip("\r\x00 ")
    if not text.startswith("MSH") or len(text) < 8:
        raise Malformed("the message does not start with an MSH segment", "100")
    return text


def _parsed(text: str) -> Message:
    try:
        parsed = hl7.parse(text)
    except Exception as e:  # python-hl7 raises several types on bad input
        raise Malformed(f"cannot parse the message: {type(e).__name__}: {e}", "102") from None
    segments: dict[str, list[Any]] = {}
    for segment in parsed:
        segments.setdefault(str(segment[0]), []).append(segment)
    message = Message(text, parsed, segments)
    if not message.get("MSH.F9.R1.C1"):
        raise Malformed("MSH-9 (message type) is empty", "101")
    return message


def decode(raw: bytes) -> str:
    charset = _msh_field(raw, 18).decode("ascii", "replace").split("^")[0].strip()
    codec = _tables()["charsets"].get(charset.upper())
    if codec not in (None, "ascii", "latin-1"):
        return raw.decode(codec, "replace")
    # many senders declare ASCII or Latin-1 (or nothing) and send UTF-8; bytes that are valid
    # UTF-8 with non-ASCII characters are practically never meant as Latin-1
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _msh_field(raw: bytes, number: int) -> bytes:
    """MSH-n straight from the bytes (the charset must be known before decoding)."""
    if not raw.startswith(b"MSH") or len(raw) < 4:
        return b""
    segment = raw.split(b"\r", 1)[0].split(b"\n", 1)[0]
    fields = segment.split(raw[3:4])
    return fields[number - 1] if len(fields) >= number else b""  # MSH-1 is the separator


def supported_version(version: str) -> bool:
    """Whether Kerma reads messages of this MSH-12 version (mappings/hl7/messages.yaml).

    >>> [supported_version(v) for v in ("2.3", "2.5.1", "2.8.2", "2.9", "2.2", "3.0", "x")]
    [True, True, True, True, False, False, False]
    """
    rule = _tables()["versions"]
    parts = version.split(".")
    # ASCII digits only: str.isdigit() also takes "³", which int() refuses (found by atheris)
    if parts[0] != str(rule["major"]) or not all(p.isascii() and p.isdigit() for p in parts):
        return False
    return tuple(int(p) for p in parts) >= tuple(int(p) for p in str(rule["from"]).split("."))


def supported_versions() -> str:
    """The versions Kerma reads, as people say it ("2.3 and later 2.x")."""
    rule = _tables()["versions"]
    return f"{rule['from']} and later {rule['major']}.x"


def action(event: str) -> str | None:
    """What Kerma does with a message type^trigger (mappings/hl7/messages.yaml), or None."""
    return _tables()["events"].get(event)  # type: ignore[no-any-return]


def table(name: str) -> dict[str, str]:
    """A code table of mappings/hl7/messages.yaml (order_control, priorities...)."""
    return {str(k): str(v) for k, v in _tables()[name].items()}


def handled_types() -> set[str]:
    return {e.split("^")[0] for e in _tables()["events"]}


@functools.cache
def _tables() -> dict[str, Any]:
    table: dict[str, Any] = read_yaml("hl7/messages.yaml")
    table["charsets"] = {str(k).upper(): v for k, v in table["charsets"].items()}
    return table


def timestamp(text: str) -> datetime | None:
    """An HL7 DTM (YYYYMMDD[HH[MM[SS]]], offset ignored) as a naive datetime, or None."""
    digits = re.match(r"\d{8,14}", text)
    if not digits:
        return None
    stamp = digits.group(0)
    try:
        return datetime.strptime(stamp, "%Y%m%d%H%M%S"[: len(stamp) - 2])
    except ValueError:
        return None
