"""What vendors put where the standard has no place: read only where a dose workflow needs it.

Siemens angiography systems write an XML document into the root Comment (121106) of their
RDSRs; its <PatientPosition><Position SRData="HFS"/> is the patient position for the whole
procedure, which the skin dose calculation needs and the events do not carry.
"""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET

from server.dose.model import Coded
from server.mappings import read_csv_rows

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
