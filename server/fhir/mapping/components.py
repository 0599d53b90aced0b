"""Observation components: one per DICOM concept, table-driven from
mappings/dicom/concepts.csv (components_of), and the readers of stored components."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from server.dose.model import Coded
from server.dose.pulses import PulseValues
from server.fhir.datatypes import CodeableConcept, ObservationComponent, Quantity
from server.fhir.mapping.codes import ABSENT_REASON, DCM, SYSTEMS, UCUM
from server.fhir.mapping.context import codeable
from server.mappings import Concept


def _component_coding(resource: dict[str, Any], code: str) -> dict[str, Any] | None:
    for component in resource.get("component", []):
        if component["code"]["coding"][0]["code"] == code and "valueCodeableConcept" in component:
            codings = component["valueCodeableConcept"].get("coding")
            return codings[0] if codings else None
    return None


def _sum(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def component_datetime(resource: dict[str, Any], code: str) -> str | None:
    for component in resource.get("component", []):
        if (
            any(c.get("code") == code for c in component["code"].get("coding", []))
            and "valueDateTime" in component
        ):
            return str(component["valueDateTime"])
    return None


def component_value(resource: dict[str, Any], code: str) -> float | None:
    for component in resource.get("component", []):
        if (
            any(c.get("code") == code for c in component["code"].get("coding", []))
            and "valueQuantity" in component
        ):
            return float(component["valueQuantity"]["value"])
    return None


def _acquisition_type(resource: dict[str, Any]) -> str | None:
    for component in resource.get("component", []):
        if (
            component["code"]["coding"][0]["code"] == "113820"
            and "valueCodeableConcept" in component
        ):
            return str(component["valueCodeableConcept"]["coding"][0]["code"])
    return None


def components_of(
    named: Iterable[Concept], values: object, label: str = ""
) -> list[ObservationComponent]:
    """The Observation components of the concepts mapped to components (concepts.csv), with
    the values the model object holds for their fields; `label` ends each display (a CT's
    X-ray source)."""
    out: list[ObservationComponent] = []
    for c in named:
        if c.fhir != "component":
            continue
        value = getattr(values, c.field)
        system, display = SYSTEMS[c.scheme], c.meaning + label
        if c.type == "NUM":
            made = _quantity(c.code, display, value, c.unit, system)
        elif c.type == "COUNT":
            made = _integer(c.code, display, value)
        elif c.type in ("CODE", "CODE_OR_TEXT"):
            made = _code_component(c.code, display, value, system)
        else:
            made = _text_component(c.code, display, value, system)
        if made is not None:
            out.append(made)
    return out


def pulse_components(
    named: Iterable[Concept], per_pulse: Iterable[PulseValues], pulse_rate_per_s: float | None
) -> list[ObservationComponent]:
    """For each quantity given once per pulse (its summary is the concept's own component):
    its range over the pulses counted, where they differ, and every value in pulse order as
    SampledData (period from the pulse rate; 0 when the event states none)."""
    by_field = {c.field: c for c in named}
    period = number(1000.0 / pulse_rate_per_s) if pulse_rate_per_s else 0
    out: list[ObservationComponent] = []
    for pulses in per_pulse:
        c = by_field[pulses.field]
        coding = _component_code(c.code, c.meaning, SYSTEMS[c.scheme])["coding"]
        counted = pulses.counted
        if counted and min(counted) != max(counted):
            low, high = (_ucum(number(v), c.unit) for v in (min(counted), max(counted)))
            out.append({"code": {"coding": coding, "text": f"{c.meaning}, range over the pulses"},
                        "valueRange": {"low": low, "high": high}})  # fmt: skip
        out.append({
            "code": {"coding": coding, "text": f"{c.meaning}, per pulse"},
            "valueSampledData": {
                "origin": _ucum(0, c.unit), "period": period, "dimensions": 1,
                "data": " ".join(str(number(v)) for v in pulses.values),
            },
        })  # fmt: skip
    return out


def _ucum(value: float | int, unit: str) -> Quantity:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def _component_code(code: str, display: str, scheme: str = DCM) -> CodeableConcept:
    return {"coding": [{"system": scheme, "code": code, "display": display}]}


def _quantity(
    code: str, display: str, value: float | None, unit: str, scheme: str = DCM
) -> ObservationComponent | None:
    if value is None:
        return None
    if not math.isfinite(value):  # a report's "NaN" or "1e999": JSON has no such number
        absent = (
            "not-a-number"
            if math.isnan(value)
            else f"{'positive' if value > 0 else 'negative'}-infinity"
        )
        return {"code": _component_code(code, display, scheme),
                "dataAbsentReason": {"coding": [{"system": ABSENT_REASON, "code": absent}]}}  # fmt: skip
    return {
        "code": _component_code(code, display, scheme),
        "valueQuantity": _ucum(number(value), unit),
    }


def _datetime_component(code: str, display: str, value: str | None) -> ObservationComponent | None:
    return (
        None if value is None else {"code": _component_code(code, display), "valueDateTime": value}
    )


def _integer(code: str, display: str, value: int | None) -> ObservationComponent | None:
    if value is None:
        return None
    if not -(2**31) <= value < 2**31:  # FHIR's integer is 32-bit: a report's 2**70 is an error
        return {"code": _component_code(code, display),
                "dataAbsentReason": {"coding": [{"system": ABSENT_REASON, "code": "error"}]}}  # fmt: skip
    return {"code": _component_code(code, display), "valueInteger": int(value)}


def _text_component(
    code: str, display: str, value: str | None, scheme: str = DCM
) -> ObservationComponent | None:
    return (
        None
        if not value
        else {"code": _component_code(code, display, scheme), "valueString": value}
    )


def _code_component(
    code: str, display: str, value: Coded | None, scheme: str = DCM
) -> ObservationComponent | None:
    return (
        None
        if value is None
        else {
            "code": _component_code(code, display, scheme),
            "valueCodeableConcept": codeable(value),
        }
    )


def number(value: float) -> float | int:
    """A JSON number without binary noise: 12 significant digits (DAP in Gy.m2 is ~1e-6).

    >>> number(4.1e-06), number(724.5200000000001), number(3.0)
    (4.1e-06, 724.52, 3)
    """
    rounded = float(f"{float(value):.12g}")
    return int(rounded) if rounded.is_integer() and abs(rounded) < 1e15 else rounded
