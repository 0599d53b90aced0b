"""TID 10001 Projection X-Ray Radiation Dose: DX, RF/XA (single plane and biplane) and MG.

Accumulated data per plane (TID 10002 with 10004/10007, 10005 for mammography) and every
irradiation event (TID 10003 with its detector, source and mechanical parts). Vendors put the
parts either flat in the event or in sub-containers; both are read.
"""

from __future__ import annotations

from dataclasses import replace

from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from server.dicom.sr import Concept, Item, irradiating_device
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

DCM = codes.DCM
LATERALITY = ("SCT", "272741003")
ANATOMICAL_STRUCTURE = ("SCT", "91723000")
_OWN_CONTAINERS = {
    ("DCM", "113771"),
    ("DCM", "113876"),
}  # filters and device participants stay apart


def totals(root: Item, units: UnitTable, findings: list[Finding]) -> tuple[ProjectionTotals, ...]:
    out = []
    for acc in root.children_of(DCM.AccumulatedXRayDoseData):
        scope = _flat(acc)
        frames = scope.num_in(DCM.TotalNumberOfRadiographicFrames, "1", units, findings)
        out.append(
            ProjectionTotals(
                plane=scope.code_of(DCM.AcquisitionPlane),
                dap_total_gy_m2=scope.num_in(DCM.DoseAreaProductTotal, "Gy.m2", units, findings),
                dose_rp_total_gy=scope.num_in(DCM.DoseRPTotal, "Gy", units, findings),
                fluoro_dap_total_gy_m2=scope.num_in(
                    DCM.FluoroDoseAreaProductTotal, "Gy.m2", units, findings
                ),
                fluoro_dose_rp_total_gy=scope.num_in(DCM.FluoroDoseRPTotal, "Gy", units, findings),
                fluoro_time_s=scope.num_in(DCM.TotalFluoroTime, "s", units, findings),
                acquisition_dap_total_gy_m2=scope.num_in(
                    DCM.AcquisitionDoseAreaProductTotal, "Gy.m2", units, findings
                ),
                acquisition_dose_rp_total_gy=scope.num_in(
                    DCM.AcquisitionDoseRPTotal, "Gy", units, findings
                ),
                acquisition_time_s=scope.num_in(DCM.TotalAcquisitionTime, "s", units, findings),
                radiographic_frames=int(frames) if frames is not None else None,
                reference_point_definition=_code_or_text(scope, DCM.ReferencePointDefinition),
            )
        )
    return tuple(out)


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
    def num(code: Code | Concept, unit: str) -> float | None:
        return e.num_in(code, unit, units, findings)

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
    return ProjectionEvent(
        event_uid=uid,
        started=e.datetime_of(DCM.DatetimeStarted),
        plane=e.code_of(DCM.AcquisitionPlane),
        event_type=e.code_of(DCM.IrradiationEventType),
        protocol=e.text_of(DCM.AcquisitionProtocol),
        target_region=(region.code if region else None) or (anatomy.code if anatomy else None),
        laterality=laterality,
        image_view=e.code_of(DCM.ImageView),
        patient_table_relationship=e.code_of(DCM.PatientTableRelationship),
        patient_orientation=orientation.code if orientation else None,
        patient_orientation_modifier=orientation.code_of(DCM.PatientOrientationModifier)
        if orientation
        else None,
        reference_point_definition=_code_or_text(e, DCM.ReferencePointDefinition),
        dap_gy_m2=num(DCM.DoseAreaProduct, "Gy.m2"),
        dose_rp_gy=num(DCM.DoseRP, "Gy"),
        entrance_exposure_mgy=num(DCM.EntranceExposureAtRP, "mGy"),
        half_value_layer_mm=num(DCM.HalfValueLayer, "mm"),
        agd_mgy=num(DCM.AverageGlandularDose, "mGy"),
        exposure_index=num(DCM.ExposureIndex, "1"),
        target_exposure_index=num(DCM.TargetExposureIndex, "1"),
        deviation_index=num(DCM.DeviationIndex, "1"),
        fluoro_mode=e.code_of(DCM.FluoroMode),
        pulse_rate_per_s=num(DCM.PulseRate, "{pulse}/s"),
        number_of_pulses=num(DCM.NumberOfPulses, "1"),
        pulse_width_ms=num(DCM.PulseWidth, "ms"),
        irradiation_duration_s=num(DCM.IrradiationDuration, "s"),
        kvp_kv=num(DCM.KVP, "kV"),
        tube_current_ma=num(DCM.XRayTubeCurrent, "mA"),
        # some devices report only the tube current(s): their mean is the average current
        average_tube_current_ma=num(DCM.AverageXRayTubeCurrent, "mA")
        or _mean(e, DCM.XRayTubeCurrent, "mA", units, findings),
        # 113824 in current editions; 113735 (retired) in older devices
        exposure_time_ms=num(DCM.ExposureTime, "ms") or num(("DCM", "113735"), "ms"),
        exposure_uas=num(DCM.Exposure, "uA.s"),
        focal_spot_mm=num(DCM.FocalSpotSize, "mm"),
        anode_target=e.code_of(DCM.AnodeTargetMaterial),
        collimated_field_area_m2=num(DCM.CollimatedFieldArea, "m2"),
        collimated_field_height_mm=num(DCM.CollimatedFieldHeight, "mm"),
        collimated_field_width_mm=num(DCM.CollimatedFieldWidth, "mm"),
        grids=tuple(i.code for i in e.children_of(DCM.XRayGrid) if i.code is not None),
        filters=tuple(_filter(f, units, findings) for f in e.children_of(DCM.XRayFilters)),
        primary_angle_deg=num(DCM.PositionerPrimaryAngle, "deg"),
        secondary_angle_deg=num(DCM.PositionerSecondaryAngle, "deg"),
        primary_end_angle_deg=num(DCM.PositionerPrimaryEndAngle, "deg"),
        secondary_end_angle_deg=num(DCM.PositionerSecondaryEndAngle, "deg"),
        column_angulation_deg=num(DCM.ColumnAngulation, "deg"),
        table_head_tilt_deg=num(DCM.TableHeadTiltAngle, "deg"),
        table_horizontal_rotation_deg=num(DCM.TableHorizontalRotationAngle, "deg"),
        table_cradle_tilt_deg=num(DCM.TableCradleTiltAngle, "deg"),
        compression_thickness_mm=num(DCM.CompressionThickness, "mm"),
        compression_force_n=num(DCM.CompressionForce, "N"),
        compression_pressure_kpa=num(DCM.CompressionPressure, "kPa"),
        compression_contact_area_mm2=num(DCM.CompressionContactArea, "mm2"),
        mechanical_configuration=e.code_of(DCM.CRDRMechanicalConfiguration),
        source_to_detector_mm=num(DCM.DistanceSourceToDetector, "mm"),
        source_to_isocenter_mm=num(DCM.DistanceSourceToIsocenter, "mm"),
        source_to_reference_point_mm=num(DCM.DistanceSourceToReferencePoint, "mm"),
        source_to_table_plane_mm=num(DCM.DistanceSourceToTablePlane, "mm"),
        table_longitudinal_mm=num(DCM.TableLongitudinalPosition, "mm"),
        table_lateral_mm=num(DCM.TableLateralPosition, "mm"),
        table_height_mm=num(DCM.TableHeightPosition, "mm"),
        comment=e.text_of(DCM.Comment),
        device=irradiating_device(e),
    )


def _code_or_text(item: Item, code: Code | Concept) -> Coded | None:
    """A CODE item, or a TEXT one where the template allows either (Reference Point Definition)."""
    found = item.child(code)
    if found is None:
        return None
    if found.code is not None:
        return found.code
    return Coded("", "", found.text) if found.text else None


def _mean(
    item: Item, code: Code | Concept, unit: str, units: UnitTable, findings: list[Finding]
) -> float | None:
    values = [
        v for i in item.children_of(code) if (v := _value_in(i, unit, units, findings)) is not None
    ]
    return sum(values) / len(values) if values else None


def _filter(item: Item, units: UnitTable, findings: list[Finding]) -> XRayFilter:
    return XRayFilter(
        filter_type=item.code_of(DCM.XRayFilterType),
        material=item.code_of(DCM.XRayFilterMaterial),
        thickness_min_mm=item.num_in(DCM.XRayFilterThicknessMinimum, "mm", units, findings),
        thickness_max_mm=item.num_in(DCM.XRayFilterThicknessMaximum, "mm", units, findings),
    )


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
