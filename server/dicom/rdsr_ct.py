"""TID 10011 CT Radiation Dose: accumulated data (TID 10012) and every acquisition (TID 10013).

Which concept fills which field, in which unit, is mappings/dicom/concepts.csv; every NUM is
converted from the unit the file states to the unit the table names for its field.
"""

from __future__ import annotations

from pydicom.sr.codedict import codes

from server.dicom.sr import Item, irradiating_device, read_fields
from server.dose.model import CtEvent, CtSource, CtTotals, DoseCheck, Finding
from server.dose.units import UnitTable
from server.mappings import concepts

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
    return CtTotals(**read_fields(concepts("ct_totals"), {"accumulated": acc}, units, findings))


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
    """The acquisition's concepts (mappings/dicom/concepts.csv, template ct_event), each from
    the container the table names: the acquisition itself, its CT Acquisition Parameters or
    its CT Dose; then its X-ray sources and dose checks."""
    params = item.child(DCM.CTAcquisitionParameters)
    dose = item.child(DCM.CTDose)
    containers = {"acquisition": item, "parameters": params, "dose": dose}
    sources = params.children_of(DCM.CTXRaySourceParameters) if params else []
    return CtEvent(
        event_uid=uid,
        **read_fields(concepts("ct_event"), containers, units, findings),
        sources=tuple(
            CtSource(**read_fields(concepts("ct_source"), {"source": s}, units, findings))
            for s in sources
        ),
        dose_checks=_dose_checks(dose, units, findings) if dose else (),
        device=irradiating_device(item),
    )


def _dose_checks(dose: Item, units: UnitTable, findings: list[Finding]) -> tuple[DoseCheck, ...]:
    """TID 10015: the alert and notification containers sit directly in CT Dose."""
    checks: list[DoseCheck] = []
    for kind, container in (
        ("alert", DCM.DoseCheckAlertDetails),
        ("notification", DCM.DoseCheckNotificationDetails),
    ):
        named = (*concepts(f"ct_{kind}"), *concepts("ct_dose_check"))
        for item in dose.children_of(container):
            values = read_fields(named, {"check": item}, units, findings)
            checks.append(DoseCheck(kind=kind, **values))  # type: ignore[arg-type]
    return tuple(checks)
