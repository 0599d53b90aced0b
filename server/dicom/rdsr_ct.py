"""TID 10011 CT Radiation Dose: accumulated data (TID 10012) and every acquisition (TID 10013).

Every NUM is converted from the unit the file states to the unit the model field names.
"""

from __future__ import annotations

from pydicom.sr.codedict import codes

from server.dicom.sr import Item, irradiating_device
from server.dose.model import CtEvent, CtSource, CtTotals, DoseCheck, Finding
from server.dose.units import UnitTable

DCM = codes.DCM


def totals(root: Item, units: UnitTable, findings: list[Finding]) -> CtTotals | None:
    acc = root.child(DCM.CTAccumulatedDoseData)
    if acc is None:
        findings.append(
            Finding(
                root.path, "warning", "totals-missing", "no CT Accumulated Dose Data (TID 10012)"
            )
        )
        return None
    events = acc.num_in(DCM.TotalNumberOfIrradiationEvents, "{events}", units, findings)
    return CtTotals(
        total_events=int(events) if events is not None else None,
        dlp_total_mgy_cm=acc.num_in(DCM.CTDoseLengthProductTotal, "mGy.cm", units, findings),
        effective_dose_total_msv=acc.num_in(DCM.CTEffectiveDoseTotal, "mSv", units, findings),
    )


def events(root: Item, units: UnitTable, findings: list[Finding]) -> tuple[CtEvent, ...]:
    read: list[CtEvent] = []
    for item in root.children_of(DCM.CTAcquisition):
        uid = item.uid_of(DCM.IrradiationEventUID)
        if not uid:
            findings.append(
                Finding(
                    item.path,
                    "error",
                    "event-uid-missing",
                    "CT acquisition without Irradiation Event UID; skipped",
                )
            )
            continue
        read.append(_event(item, uid, units, findings))
    return tuple(read)


def _event(item: Item, uid: str, units: UnitTable, findings: list[Finding]) -> CtEvent:
    params = item.child(DCM.CTAcquisitionParameters)
    dose = item.child(DCM.CTDose)
    n_sources = (
        params.num_in(DCM.NumberOfXRaySources, "{X-Ray sources}", units, findings)
        if params
        else None
    )
    return CtEvent(
        event_uid=uid,
        started=item.datetime_of(DCM.DatetimeStarted),
        protocol=item.text_of(DCM.AcquisitionProtocol),
        target_region=item.code_of(DCM.TargetRegion),
        acquisition_type=item.code_of(DCM.CTAcquisitionType),
        procedure_context=item.code_of(("SCT", "408730004")),
        exposure_time_s=params.num_in(DCM.ExposureTime, "s", units, findings) if params else None,
        scanning_length_mm=params.num_in(DCM.ScanningLength, "mm", units, findings)
        if params
        else None,
        exposed_range_mm=params.num_in(DCM.ExposedRange, "mm", units, findings) if params else None,
        single_collimation_mm=params.num_in(
            DCM.NominalSingleCollimationWidth, "mm", units, findings
        )
        if params
        else None,
        total_collimation_mm=params.num_in(DCM.NominalTotalCollimationWidth, "mm", units, findings)
        if params
        else None,
        pitch=params.num_in(DCM.PitchFactor, "{ratio}", units, findings) if params else None,
        number_of_sources=int(n_sources) if n_sources is not None else None,
        sources=tuple(
            _source(s, units, findings) for s in params.children_of(DCM.CTXRaySourceParameters)
        )
        if params
        else (),
        ctdivol_mgy=dose.num_in(DCM.MeanCtdivol, "mGy", units, findings) if dose else None,
        dlp_mgy_cm=dose.num_in(DCM.DLP, "mGy.cm", units, findings) if dose else None,
        phantom=dose.code_of(DCM.CtdiwPhantomType) if dose else None,
        ctdi_freeair_mgy=dose.num_in(DCM.MeanCtdifreeair, "mGy", units, findings) if dose else None,
        effective_dose_msv=dose.num_in(DCM.EffectiveDose, "mSv", units, findings) if dose else None,
        ssde_mgy=_first_num((dose, item), DCM.SizeSpecificDoseEstimate, "mGy", units, findings),
        water_equivalent_diameter_mm=_first_num(
            (dose, item), DCM.WaterEquivalentDiameter, "mm", units, findings
        ),
        lateral_dimension_mm=_first_num(
            (dose, item), DCM.MeasuredLateralDimension, "mm", units, findings
        ),
        ap_dimension_mm=_first_num((dose, item), DCM.MeasuredAPDimension, "mm", units, findings),
        effective_diameter_mm=_first_num(
            (dose, item), DCM.DerivedEffectiveDiameter, "mm", units, findings
        ),
        modulation_type=item.text_of(DCM.XRayModulationType),
        comment=item.text_of(DCM.Comment),
        dose_checks=_dose_checks(dose, units, findings) if dose else (),
        device=irradiating_device(item),
    )


def _source(item: Item, units: UnitTable, findings: list[Finding]) -> CtSource:
    return CtSource(
        identification=item.text_of(DCM.IdentificationOfTheXRaySource),
        kvp_kv=item.num_in(DCM.KVP, "kV", units, findings),
        max_tube_current_ma=item.num_in(DCM.MaximumXRayTubeCurrent, "mA", units, findings),
        tube_current_ma=item.num_in(DCM.XRayTubeCurrent, "mA", units, findings),
        exposure_time_per_rotation_s=item.num_in(DCM.ExposureTimePerRotation, "s", units, findings),
        filter_al_mm=item.num_in(DCM.XRayFilterAluminumEquivalent, "mm", units, findings),
    )


def _first_num(
    items: tuple[Item | None, ...],
    code: object,
    unit: str,
    units: UnitTable,
    findings: list[Finding],
) -> float | None:
    for item in items:
        if item is not None:
            value = item.num_in(code, unit, units, findings)  # type: ignore[arg-type]
            if value is not None:
                return value
    return None


def _dose_checks(dose: Item, units: UnitTable, findings: list[Finding]) -> tuple[DoseCheck, ...]:
    """TID 10015: the alert and notification containers sit directly in CT Dose."""
    checks: list[DoseCheck] = []
    for kind, code in (
        ("alert", DCM.DoseCheckAlertDetails),
        ("notification", DCM.DoseCheckNotificationDetails),
    ):
        for item in dose.children_of(code):
            checks.append(
                DoseCheck(
                    kind=kind,  # type: ignore[arg-type]
                    dlp_mgy_cm=item.num_in(
                        DCM.DLPAlertValue if kind == "alert" else DCM.DLPNotificationValue,
                        "mGy.cm",
                        units,
                        findings,
                    ),
                    ctdivol_mgy=item.num_in(
                        DCM.CtdivolAlertValue if kind == "alert" else DCM.CtdivolNotificationValue,
                        "mGy",
                        units,
                        findings,
                    ),
                    accumulated_dlp_forward_mgy_cm=item.num_in(
                        DCM.AccumulatedDLPForwardEstimate, "mGy.cm", units, findings
                    ),
                    accumulated_ctdivol_forward_mgy=item.num_in(
                        DCM.AccumulatedCtdivolForwardEstimate, "mGy", units, findings
                    ),
                    dlp_forward_mgy_cm=item.num_in(
                        DCM.DLPForwardEstimate, "mGy.cm", units, findings
                    ),
                    ctdivol_forward_mgy=item.num_in(
                        DCM.CtdivolForwardEstimate, "mGy", units, findings
                    ),
                    reason=item.text_of(DCM.ReasonForProceeding),
                )
            )
    return tuple(checks)
