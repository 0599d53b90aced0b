"""What vendors put where the standard has no place: read only where a dose workflow needs it.

Siemens angiography systems write an XML document into the root Comment (121106) of their
RDSRs; its <PatientPosition><Position SRData="HFS"/> is the patient position for the whole
procedure, which the skin dose calculation needs and the events do not carry.
"""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET
from dataclasses import replace
from typing import Any

from server.dicom.sr import Item
from server.dose.model import Coded, Finding, ProjectionEvent, ProjectionTotals
from server.dose.units import UnitTable
from server.mappings import read_csv_rows, read_yaml

PositionCodes = tuple[Coded, Coded, Coded]  # table relationship, orientation, orientation modifier


def siemens_patient_position(comment: str | None) -> str | None:
    """The position code (HFS, FFP...) from a Siemens root comment, if it holds one.

    >>> siemens_patient_position('<Root><PatientPosition><Position SRData="HFS "/></PatientPosition></Root>')
    'HFS'
    >>> siemens_patient_position("free text"), siemens_patient_position(None)
    (None, None)
    """
    if not comment or "<PatientPosition>" not in comment:
        return None
    try:
        node = ET.fromstring(comment).find("./PatientPosition/Position")
    except ET.ParseError:
        return None
    value = node.get("SRData", "").strip() if node is not None else ""
    return value or None


@functools.cache
def _positions() -> dict[str, PositionCodes]:
    table: dict[str, PositionCodes] = {}
    for row in read_csv_rows("dicom/patient_position.csv"):
        table[row["position"]] = (
            Coded(row["table_scheme"], row["table_value"], row["table_meaning"]),
            Coded(row["orientation_scheme"], row["orientation_value"], row["orientation_meaning"]),
            Coded(row["modifier_scheme"], row["modifier_value"], row["modifier_meaning"]),
        )
    return table


def position_codes(position: str | None) -> PositionCodes | None:
    """DICOM Patient Position (0018,5100) as the coded TID 10003 concepts.

    >>> [c.meaning for c in position_codes("FFS")]
    ['feet-first', 'recumbent', 'supine']
    """
    return _positions().get((position or "").strip().upper())


@functools.cache
def private_summaries() -> dict[tuple[str, str], dict[str, Any]]:
    """Root concept (scheme, code) -> how to read that proprietary summary."""
    table = read_yaml("dicom/private_summaries.yaml")
    return {tuple(key.split(":", 1)): spec for key, spec in table.items()}


def private_totals(
    root: Item, spec: dict[str, Any], units: UnitTable, findings: list[Finding]
) -> ProjectionTotals:
    """The accumulated dose a proprietary summary states, in the model's units."""
    values: dict[str, Any] = {}
    scheme = root.concept[0] if root.concept else ""
    for code, target in spec["items"].items():
        value = root.num_in((scheme, code), target["unit"], units, findings)
        if value is not None:
            values[target["field"]] = (
                int(value) if target["field"] == "radiographic_frames" else value
            )
    if "dap_total_gy_m2" in values and "fluoro_time_s" in values:
        values["fluoro_dap_total_gy_m2"] = values[
            "dap_total_gy_m2"
        ]  # these devices only do fluoroscopy
    return ProjectionTotals(plane=Coded("DCM", "113622", "Single Plane"), **values)


def carry_forward(
    events: tuple[ProjectionEvent, ...], manufacturer: str | None
) -> tuple[ProjectionEvent, ...]:
    """Fill values a device writes only when they change from the previous event of the plane."""
    fields = next(
        (
            names
            for prefix, names in read_yaml("dicom/carry_forward.yaml").items()
            if (manufacturer or "").lower().startswith(prefix.lower())
        ),
        None,
    )
    if not fields:
        return events
    last: dict[tuple[str, str], Any] = {}
    out = []
    for event in events:
        plane = event.plane.value if event.plane else ""
        filled = {}
        for name in fields:
            value = getattr(event, name)
            if value is None and (plane, name) in last:
                filled[name] = last[(plane, name)]
            elif value is not None:
                last[(plane, name)] = value
        out.append(replace(event, **filled) if filled else event)
    return tuple(out)
