"""What an ADT message says about a patient: PID (identity, demographics), OBX (height and
weight, inputs for SSDE later) and MRG (the identifiers being merged away)."""

from __future__ import annotations

import re
from datetime import date, datetime

from server.dose.patient import Address, Identifier, PatientRecord
from server.dose.units import IncompatibleUnits, UnitTable, UnknownUnit
from server.hl7.message import Message, timestamp

_GENDER = {"M": "male", "F": "female", "O": "other", "U": "unknown", "A": "other", "N": "unknown"}
_HEIGHT = ("8302-2", "3137-7", "body height", "height")  # LOINC codes and the words HIS send
_WEIGHT = ("29463-7", "3141-9", "body weight", "weight")


# PID-5 (XPN) components Kerma keeps; HL7 v2.5 gives the whole name at most 250 characters,
# so a longer part is not a name (answered AE rather than stored and shown everywhere)
_NAME_PARTS = {"family": "C1", "given": "C2", "middle": "C3", "suffix": "C4", "prefix": "C5"}
_NAME_MAX_CHARS = 250


class Unreadable(Exception):
    """A field the message needs is missing or wrong (answered with AE)."""

    def __init__(self, reason: str, code: str, where: str) -> None:
        super().__init__(reason)
        self.reason, self.code, self.where = reason, code, where


def patient(message: Message, units: UnitTable) -> PatientRecord:
    if not message.count("PID"):
        raise Unreadable("the message has no PID segment", "100", "PID")
    identifiers = identifiers_in(message, "PID.F3")
    if not identifiers:
        raise Unreadable("PID-3 (patient identifier list) is empty", "101", "PID^1^3")
    height, weight, measured = _measurements(message, units)
    name = {part: _bounded(message, f"PID.F5.R1.{component}", f"PID^1^5^{component[1:]}")
            for part, component in _NAME_PARTS.items()}  # fmt: skip
    return PatientRecord(
        identifiers=identifiers,
        family=message.get("PID.F5.R1.C1.S1") or name["family"],
        given=tuple(g for g in (name["given"], name["middle"]) if g),
        prefix=name["prefix"],
        suffix=name["suffix"],
        birth_date=_date(message.get("PID.F7.R1.C1"), "PID^1^7"),
        gender=_GENDER.get(message.get("PID.F8.R1.C1").upper()),
        addresses=_addresses(message),
        height_m=height,
        weight_kg=weight,
        measured=measured,
    )


def _bounded(message: Message, path: str, where: str) -> str:
    text = message.get(path)
    if len(text) > _NAME_MAX_CHARS:
        raise Unreadable(f"{where.replace('^1^', '-').replace('^', '.')} is {len(text)} characters "
                         f"long; a name has at most {_NAME_MAX_CHARS}", "102", where)  # fmt: skip
    return text


def merged_identifiers(message: Message) -> tuple[Identifier, ...]:
    """MRG-1 (prior patient identifier list), with MRG-4 (prior patient ID) of v2.3 senders."""
    if not message.count("MRG"):
        raise Unreadable("a merge needs an MRG segment", "100", "MRG")
    found = identifiers_in(message, "MRG.F1") or identifiers_in(message, "MRG.F4")
    if not found:
        raise Unreadable("MRG-1 (prior patient identifier list) is empty", "101", "MRG^1^1")
    return found


def identifiers_in(message: Message, field: str) -> tuple[Identifier, ...]:
    found = []
    for r in range(1, message.repeats(field) + 1):
        value = message.get(f"{field}.R{r}.C1")
        if value:
            authority = message.get(f"{field}.R{r}.C4.S1") or message.get(f"{field}.R{r}.C4.S2")
            found.append(Identifier(value, authority, message.get(f"{field}.R{r}.C5")))
    return tuple(found)


def _addresses(message: Message) -> tuple[Address, ...]:
    found = []
    for r in range(1, message.repeats("PID.F11") + 1):
        part = [message.get(f"PID.F11.R{r}.C{c}") for c in range(1, 8)]
        if any(part[:6]):
            found.append(
                Address(
                    tuple(p for p in part[:2] if p), part[2], part[3], part[4], part[5], part[6]
                )
            )
    return tuple(found)


def _measurements(
    message: Message, units: UnitTable
) -> tuple[float | None, float | None, datetime | None]:
    height = weight = None
    measured = None
    for i in range(1, message.count("OBX") + 1):
        code = " ".join(message.get(f"OBX{i}.F3.R1.C{c}") for c in (1, 2)).lower()
        raw, unit = message.get(f"OBX{i}.F5"), message.get(f"OBX{i}.F6.R1.C1")
        if not re.fullmatch(r"\d+(\.\d+)?", raw):
            continue
        if any(key in code for key in _HEIGHT):
            height = _converted(units, float(raw), unit, "m") or height
        elif any(key in code for key in _WEIGHT):
            weight = _converted(units, float(raw), unit, "kg") or weight
        else:
            continue
        measured = timestamp(message.get(f"OBX{i}.F14")) or measured
    return height, weight, measured or timestamp(message.get("MSH.F7"))


def _converted(units: UnitTable, value: float, unit: str, target: str) -> float | None:
    try:
        return units.convert(value, units.resolve(unit), target)
    except (UnknownUnit, IncompatibleUnits):  # a value Kerma cannot place is left out
        return None


def _date(text: str, where: str) -> date | None:
    if not text:
        return None
    try:
        return datetime.strptime(text[:8], "%Y%m%d").date()
    except ValueError:
        raise Unreadable(
            f"{where.replace('^1^', '-')} {text!r} is not a date", "102", where
        ) from None
