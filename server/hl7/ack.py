"""Acknowledgements: AA when applied, AE when understood but not applied, AR when rejected.

The reason goes to MSA-3 (read by every version) and to the ERR segment: ERR-1 up to v2.4,
ERR-3 (HL7 table 0357 code), ERR-4 (severity) and ERR-8 (user message) from v2.5 on.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

from server.hl7.message import Message

_CODES = {  # HL7 table 0357, the ones Kerma answers with
    "0": "Message accepted",
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "203": "Unsupported version id",
    "204": "Unknown key identifier",
    "205": "Duplicate key identifier",
    "207": "Application internal error",
}
_counter = itertools.count(1)


@dataclass(frozen=True)
class Outcome:
    """How a message ended: the MSA-1 code and, when not AA, why."""

    code: str  # AA, AE, AR
    reason: str = ""
    error: str = "0"  # table 0357
    segment: str = ""  # where, e.g. "PID^1^3" (segment^sequence^field)

    @classmethod
    def applied(cls, note: str = "") -> Outcome:
        return cls("AA", note)

    @classmethod
    def failed(cls, reason: str, error: str, segment: str = "") -> Outcome:
        return cls("AE", reason, error, segment)

    @classmethod
    def rejected(cls, reason: str, error: str, segment: str = "") -> Outcome:
        return cls("AR", reason, error, segment)


def ack(message: Message | None, outcome: Outcome, receiver: str) -> bytes:
    """The ACK for `message` (None: bytes that could not be read as a message at all)."""
    get = message.get if message else (lambda _path: "")
    version = get("MSH.F12.R1.C1") or "2.5.1"
    control = f"K{time.strftime('%Y%m%d%H%M%S')}{next(_counter):06d}"
    header = [
        "MSH",
        "^~\\&",
        receiver,
        "",
        get("MSH.F3"),
        get("MSH.F4"),
        time.strftime("%Y%m%d%H%M%S"),
        "",
        f"ACK^{get('MSH.F9.R1.C2')}^ACK" if get("MSH.F9.R1.C2") else "ACK",
        control,
        get("MSH.F11") or "P",
        version,
    ]
    segments = [
        "|".join(header),
        "|".join(["MSA", outcome.code, get("MSH.F10"), escape(outcome.reason)]),
    ]
    if outcome.code != "AA":
        segments.append(_err(outcome, version))
    return "\r".join(segments).encode("utf-8") + b"\r"


def _err(outcome: Outcome, version: str) -> str:
    text = _CODES.get(outcome.error, "")
    location = outcome.segment
    if version < "2.5":  # ERR-1: segment^sequence^field^code&text&table
        where = "^".join([*location.split("^"), "", "", ""][:3])
        return f"ERR|{where}^{outcome.error}&{text}&HL70357"
    severity = "E"
    return "|".join(
        [
            "ERR",
            "",
            location,
            f"{outcome.error}^{text}^HL70357",
            severity,
            "",
            "",
            "",
            escape(outcome.reason),
        ]
    )


def escape(text: str) -> str:
    """HL7 escape sequences for the default delimiters, so a reason cannot break the ACK."""
    for char, sequence in (
        ("\\", "\\E\\"),
        ("|", "\\F\\"),
        ("^", "\\S\\"),
        ("&", "\\T\\"),
        ("~", "\\R\\"),
    ):
        text = text.replace(char, sequence)
    return text.replace("\r", " ").replace("\n", " ")
