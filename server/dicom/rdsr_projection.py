"""TID 10001 Projection X-Ray Radiation Dose: DX, RF/XA (single plane and biplane) and MG.

Accumulated data per plane (TID 10002 with 10004/10007, 10005 for mammography) and every
irradiation event (TID 10003 with its detector, source and mechanical parts). Vendors put the
parts either flat in the event or in sub-containers; both are read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from pydicom.sr.codedict import codes

from server.dicom.sr import Item, irradiating_device, read_fields
from server.dicom.vendor import PositionCodes
from server.dose.model import (
    Coded,
    Finding,
    MammographyTotal,
    ProjectionEvent,
    ProjectionTotals,
    XRayFilter,
)
from server.dose.units import UnitTable
from server.mappings import concepts

DCM = codes.DCM
LATERALITY = ("SCT", "272741003")
ANATOMICAL_STRUCTURE = ("SCT", "91723000")
_OWN_CONTAINERS = {
    ("DCM", "113771"),
    ("DCM", "113876"),
}  # filters and device participants stay apart


def totals(root: Item, units: UnitTable, findings: list[Finding]) -> tuple[ProjectionTotals, ...]:
    named = concepts("projection_totals")
    return tuple(
        ProjectionTotals(**read_fields(named, {"accumulated": _flat(acc)}, units, findings))
        for acc in root.children_of(DCM.AccumulatedXRayDoseData)
    )


def mammography_totals(
    root: Item, units: UnitTable, findings: list[Finding]
) -> tuple[MammographyTotal, ...]:
    out = []
    for acc in root.children_of(DCM.AccumulatedXRayDoseData):
        for item in _flat(acc).children_of(DCM.AccumulatedAverageGlandularDose):
            agd = _value_in(item, "mGy", units, findings)
            if agd is not None:
                out.append(MammographyTotal(item.code_of(LATERALITY), agd))
    return tuple(out)


def events(
    root: Item, units: UnitTable, findings: list[Finding], position: PositionCodes | None = None
) -> tuple[ProjectionEvent, ...]:
    """The events; `position` (from the header or a vendor comment) fills events without one."""
    read: list[ProjectionEvent] = []
    for item in root.children_of(DCM.IrradiationEventXRayData):
        uid = item.uid_of(DCM.IrradiationEventUID)
        if not uid:
            findings.append(
                Finding(
                    item.path,
                    "error",
                    "event-uid-missing",
                    "irradiation event without UID; skipped",
                )
            )
            continue
        event = _event(_flat(item), uid, units, findings)
        if (
            position
            and event.patient_table_relationship is None
            and event.patient_orientation is None
        ):
            table, orientation, modifier = position
            event = replace(
                event,
                patient_table_relationship=table,
                patient_orientation=orientation,
                patient_orientation_modifier=event.patient_orientation_modifier or modifier,
            )
        read.append(event)
    return tuple(read)


def _event(e: Item, uid: str, units: UnitTable, findings: list[Finding]) -> ProjectionEvent:
    """The event's concepts (mappings/dicom/concepts.csv, template projection_event) from the
    flattened event; those marked `special` are read here."""
    region = e.child(DCM.TargetRegion)
    anatomy = e.child(ANATOMICAL_STRUCTURE)
    laterality = next(
        (
            i.code_of(LATERALITY)
            for i in (region, anatomy)
            if i is not None and i.code_of(LATERALITY)
        ),
        None,
    )
    orientation = e.child(DCM.PatientOrientation)
    values = read_fields(concepts("projection_event"), {"event": e}, units, findings)
    # 113824 in current editions; 113735 (retired) in older devices
    values["exposure_time_ms"] = _unless_absent(
        values["exposure_time_ms"], lambda: e.num_in(("DCM", "113735"), "ms", units, findings)
    )
    return ProjectionEvent(
        event_uid=uid,
        **values,
        target_region=(region.code if region else None) or (anatomy.code if anatomy else None),
        laterality=laterality,
        patient_orientation=orientation.code if orientation else None,
        patient_orientation_modifier=orientation.code_of(DCM.PatientOrientationModifier)
        if orientation
        else None,
        # some devices report only the tube current(s): their mean is the average current
        average_tube_current_ma=_unless_absent(
            e.num_in(DCM.AverageXRayTubeCurrent, "mA", units, findings),
            lambda: values["tube_current_ma"],
        ),
        grids=tuple(i.code for i in e.children_of(DCM.XRayGrid) if i.code is not None),
        filters=tuple(
            XRayFilter(**read_fields(concepts("projection_filter"), {"filter": f}, units, findings))
            for f in e.children_of(DCM.XRayFilters)
        ),
        device=irradiating_device(e),
    )


def _unless_absent(value: float | None, fallback: Callable[[], float | None]) -> float | None:
    """The value, or the fallback's when there is none: a reported 0 is a value (0 mA).

    >>> _unless_absent(0.0, lambda: 30.5), _unless_absent(None, lambda: 30.5)
    (0.0, 30.5)
    """
    return value if value is not None else fallback()


def _flat(container: Item) -> Item:
    """The container with the items of its sub-containers (TID 10003A/B/C, 10004...) lifted up."""
    lifted: list[Item] = []
    for child in container.children:
        lifted.append(child)
        if child.value_type == "CONTAINER" and child.concept not in _OWN_CONTAINERS:
            lifted.extend(child.children)
    return Item(
        container.path,
        container.concept,
        container.value_type,
        container.relationship,
        children=tuple(lifted),
    )


def _value_in(item: Item, unit: str, units: UnitTable, findings: list[Finding]) -> float | None:
    if item.number is None:
        return None
    if not item.unit:
        return item.number
    try:
        return units.convert(item.number, item.unit, unit)
    except ValueError as e:
        findings.append(
            Finding(item.path, "error", "unit-invalid", f"{e}; value {item.number} not used")
        )
        return None


def is_fluoroscopy(device_type: Coded | None, plane_totals: tuple[ProjectionTotals, ...]) -> bool:
    """RF/XA when fluoroscopy was recorded (some Philips systems declare the wrong Acquisition
    Device Type), or when the device says it is fluoroscopy-guided."""
    if any(t.fluoro_time_s or t.fluoro_dap_total_gy_m2 for t in plane_totals):
        return True
    return device_type is not None and device_type.value == "113957"
