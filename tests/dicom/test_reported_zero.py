"""A value a device reports as 0 is a value, not an absent one: an RF RDSR whose first event
says Average X-Ray Tube Current 0 mA keeps 0 mA, where Kerma took the mean of the event's
per-pulse tube currents instead (issue 20)."""

from __future__ import annotations

import io
from typing import Any

from pydicom import dcmread

from server.dicom.read import Read, read_dicom
from server.mappings import unit_table
from tests.dicom.conftest import SIEMENS_CT

GE_RF = SIEMENS_CT.parent / "RF-RDSR-GE.dcm"
AVERAGE_CURRENT, EVENT = "113767", "113706"


def _items(items: Any, code: str) -> list[Any]:
    found = []
    for item in items:
        name = item.get("ConceptNameCodeSequence")
        if name and name[0].CodeValue == code:
            found.append(item)
        if "ContentSequence" in item:
            found += _items(item.ContentSequence, code)
    return found


def test_a_reported_zero_average_tube_current_is_kept() -> None:
    ds = dcmread(GE_RF)
    first = _items(ds.ContentSequence, EVENT)[0]
    [average] = _items(first.ContentSequence, AVERAGE_CURRENT)
    sent = float(average.MeasuredValueSequence[0].NumericValue)
    as_sent = read_dicom(GE_RF, unit_table())
    assert (
        isinstance(as_sent, Read)
        and as_sent.report.projection_events[0].average_tube_current_ma == sent
    )
    average.MeasuredValueSequence[0].NumericValue = "0"
    data = io.BytesIO()
    ds.save_as(data)
    zero = read_dicom(data.getvalue(), unit_table())
    assert isinstance(zero, Read)
    assert zero.report.projection_events[0].average_tube_current_ma == 0.0
