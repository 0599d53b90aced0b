"""A physicist marks a study as no patient examination (a QA, phantom, service or test
exposure the rules did not recognise), or gives it back to the rules. A marked study keeps
its mark when the rules change and stored studies are classified again; its dose facts are
QA (left out of statistics, reports, surveys and DRL proposals, and counted)."""

from __future__ import annotations

from typing import Any

from server.classification.reclassify import MARKED, exam_of, reclassify_study
from server.dose.classify import HIGH, Classified, Rules
from server.dose.units import UnitTable
from server.fhir import facts
from server.fhir.acquisitions import classify_event
from server.fhir.errors import FhirError
from server.fhir.mapping import CLASSIFICATION_URL, DCM, apply_classification, extension
from server.fhir.service import FhirService, body_of


def mark_qa(
    service: FhirService, rid: str, qa: bool, by: str, rules: Rules, units: UnitTable
) -> dict[str, Any]:
    """The study marked as no patient examination by `by` (qa), or classified by the rules
    again (not qa); its events and dose facts follow. 404 for an unknown study."""
    with service.store.transaction() as tx:
        stored = tx.read("ImagingStudy", rid)
        if stored is None or stored.deleted:
            raise FhirError.of(404, "not-found", f"no ImagingStudy/{rid}")
        study = body_of(stored)
        if not qa:
            reclassify_study(service, tx, study, rules, units)
            again = tx.read("ImagingStudy", rid)
            return body_of(again) if again is not None else study
        study_ref = f"ImagingStudy/{rid}"
        pairs = [("part-of", study_ref), ("code", f"{DCM}|113852")]
        events = [body_of(s) for s in service.all_in(tx, "Observation", pairs)]
        marked = dict(study)
        text = ((study.get("procedureCode") or [{}])[0]).get("text")
        apply_classification(marked, Classified(MARKED, None, rules.version, HIGH), text,
                             rules.version)  # fmt: skip
        decision = extension(marked, CLASSIFICATION_URL)
        if decision is not None:
            decision["extension"].append({"url": "markedBy", "valueString": by})
        service.update_in(tx, "ImagingStudy", rid, marked, trusted=True)
        modality = exam_of(study, events).modality
        for event in events:
            changed = dict(event)
            classify_event(changed, modality, rules, None, "qa")
            if changed != event:
                service.update_in(tx, "Observation", event["id"], changed, trusted=True)
        facts.refresh(service, tx, study_ref, units)
        return marked
