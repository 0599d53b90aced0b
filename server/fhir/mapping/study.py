"""ImagingStudy: series and instances, and the classification of the study to a standard
procedure (an extension)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from server.dose.classify import (
    PER_ACQUISITION,
    Acquisition,
    Classified,
    Exam,
    modality_group,
)
from server.dose.model import Coded, DoseReport
from server.fhir.datatypes import (
    CodeableConcept,
    Extension,
    Identifier,
    ImagingStudy,
    ImagingStudyInstance,
    ImagingStudySeries,
)
from server.fhir.mapping.codes import (
    ACCESSION_TYPE,
    CLASSIFICATION_URL,
    DCM,
    PATIENT_AT_MODALITY_URL,
)
from server.fhir.mapping.context import Context, fhir_datetime, uid_identifier
from server.fhir.mapping.patient import merge_by_value, patient_at_modality, person


def imaging_study(
    report: DoseReport, ctx: Context, patient_ref: str | None, existing: dict[str, Any] | None
) -> ImagingStudy:
    """The study, with this object's series and instance added to what is stored (one Kerma
    built, hence of the same shape)."""
    study = report.study
    resource: ImagingStudy = (
        cast(ImagingStudy, dict(existing))
        if existing
        else {"resourceType": "ImagingStudy", "status": "available"}
    )
    identifiers: list[Identifier] = [uid_identifier(study.study_uid)]
    if study.accession:
        identifiers.append({"type": ACCESSION_TYPE, "value": study.accession})
    if study.study_id:
        identifiers.append(
            {
                "use": "secondary",
                "type": {"text": "DICOM Study ID (0020,0010)"},
                "value": study.study_id,
            }
        )
    resource["identifier"] = merge_by_value(resource.get("identifier", []), identifiers)
    if patient_ref:
        resource["subject"] = {"reference": patient_ref}
    elif "subject" not in resource:
        resource["subject"] = {"display": "unknown patient"}
    started = study.started or report.irradiation_start
    if started and "started" not in resource:
        resource["started"] = fhir_datetime(started, ctx)
    if study.description:
        resource["description"] = study.description
    _classify(resource, report, ctx)
    referrer, reader = person(study.referring_physician), person(study.reading_physician)
    if referrer:
        resource["referrer"] = {"display": referrer}
    if reader:
        resource["interpreter"] = [{"display": reader}]
    where = ", ".join(n for n in (report.equipment.institution, report.equipment.department) if n)
    if where and "location" not in resource:  # the study's own: a device may serve several
        resource["location"] = {"display": where}
    src = report.source
    modalities = {m["code"] for m in resource.get("modality", [])} | {
        report.modality,
        src.modality or report.modality,
    }
    resource["modality"] = [{"system": DCM, "code": m} for m in sorted(modalities)]
    _put_extension(resource, PATIENT_AT_MODALITY_URL, patient_at_modality(report.patient))
    resource["series"] = _with_instance(resource.get("series", []), report)
    resource["numberOfSeries"] = len(resource["series"])
    resource["numberOfInstances"] = sum(len(s.get("instance", [])) for s in resource["series"])
    return resource


def exam_of(report: DoseReport) -> Exam:
    """The words of a report that classification reads."""
    protocols = [e.protocol for e in report.ct_events] + [
        e.protocol for e in report.projection_events
    ]
    return Exam(
        modality=report.modality,
        requested_procedure=report.study.requested_procedure or "",
        description=report.study.description or "",
        protocols=tuple(dict.fromkeys(p for p in protocols if p)),
        events=len(protocols),
    )


def acquisitions_of(report: DoseReport) -> list[Acquisition]:
    """The words of each acquisition that acquisition rules read (CT events, radiographs)."""

    def said(c: Coded | None) -> str:
        return (c.meaning or c.value) if c else ""

    if modality_group(report.modality) not in PER_ACQUISITION:
        return []
    found = [Acquisition(report.modality, e.protocol or "", said(e.target_region),
                         said(e.acquisition_type), phantom=said(e.phantom),
                         scan_length_mm=e.scanning_length_mm) for e in report.ct_events]  # fmt: skip
    found += [Acquisition(report.modality, e.protocol or "", said(e.target_region),
                          view=said(e.image_view), laterality=said(e.laterality),
                          orientation=said(e.patient_orientation))
              for e in report.projection_events]  # fmt: skip
    return found


def _classify(resource: ImagingStudy, report: DoseReport, ctx: Context) -> None:
    found = ctx.rules.classify_study(exam_of(report), acquisitions_of(report))
    apply_classification(resource, found, report.study.requested_procedure, ctx.rules.version)


def apply_classification(
    resource: ImagingStudy, found: Classified | None, text: str | None, version: int
) -> None:
    """procedureCode: the standard procedure the rules gave (with the requested procedure as
    its text), and which rule of which version decided, or that none matched (review list)."""
    code: CodeableConcept = {}
    if found is not None and found.procedure is not None:
        p = found.procedure
        code = {"coding": [{"system": p.system, "code": p.code, "display": p.name}]}
    if text:
        code["text"] = text
    if code:
        resource["procedureCode"] = [code]
    else:
        resource.pop("procedureCode", None)
    decision: list[Extension] = [
        {"url": "rule", "valueString": found.rule if found else "unmatched"},
        {"url": "version", "valueInteger": version},
    ]
    if found is not None:
        decision.append({"url": "confidence", "valueCode": found.confidence})
    _put_extension(resource, CLASSIFICATION_URL, {"url": CLASSIFICATION_URL, "extension": decision})


def extension(resource: dict[str, Any], url: str) -> dict[str, Any] | None:
    return next((e for e in resource.get("extension", []) if e["url"] == url), None)


def put_extension(resource: dict[str, Any], url: str, value: Mapping[str, object] | None) -> None:
    """Replace the resource's extension of that url with `value` (None: remove it)."""
    kept = [e for e in resource.get("extension", []) if e["url"] != url]
    kept += [dict(value)] if value else []
    if kept:
        resource["extension"] = kept
    else:
        resource.pop("extension", None)


def classifying_rule(study: dict[str, Any]) -> str:
    """The id of the rule that classified a stored study, or "unmatched"."""
    found = extension(study, CLASSIFICATION_URL)
    return str(found["extension"][0]["valueString"]) if found else "unmatched"


@dataclass(frozen=True)
class Decision:
    """How a stored study was classified: the rule, and the procedure's code and region."""

    rule: str
    code: str = ""
    region: str = ""


def classification_of(study: dict[str, Any], ctx: Context) -> Decision:
    rule = classifying_rule(study)
    coding = ((study.get("procedureCode") or [{}])[0].get("coding") or [{}])[0]
    code = str(coding.get("code", ""))
    procedure = ctx.rules.procedure(code) if code else None
    return Decision(rule, code, procedure.region if procedure else "")


def _put_extension(resource: ImagingStudy, url: str, value: Extension | None) -> None:
    """put_extension for the study Kerma builds, typed."""
    put_extension(cast(dict[str, Any], resource), url, value)


def _with_instance(
    series: list[ImagingStudySeries], report: DoseReport
) -> list[ImagingStudySeries]:
    src = report.source
    series_uid = src.series_uid or src.sop_instance_uid
    instance: ImagingStudyInstance = {
        "uid": src.sop_instance_uid,
        "sopClass": {"system": "urn:ietf:rfc:3986", "code": f"urn:oid:{src.sop_class_uid}"},
    }
    out = [ImagingStudySeries(**s) for s in series]
    for s in out:
        if s["uid"] == series_uid:
            if all(i["uid"] != src.sop_instance_uid for i in s.get("instance", [])):
                s["instance"] = [*s.get("instance", []), instance]
            return out
    new: ImagingStudySeries = {
        "uid": series_uid,
        "modality": {"system": DCM, "code": src.modality or report.modality},
    }
    performers = [("performing physician", person(report.study.performing_physician))]
    performers += [("operator", person(name)) for name in report.study.operators]
    if any(name for _, name in performers):
        new["performer"] = [
            {"function": {"text": role}, "actor": {"display": name}}
            for role, name in performers
            if name
        ]
    if src.series_number is not None:
        new["number"] = src.series_number
    if src.series_description:
        new["description"] = src.series_description
    new["instance"] = [instance]
    return [*out, new]
