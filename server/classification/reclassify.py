"""Classifying stored studies again after the rules changed: each study's words (requested
procedure, description, its events' protocols) go through the current rules; where the
decision differs, the study gets the new procedure and decision and its dose facts follow."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any, cast

from server.dose.classify import HIGH, Classified, Exam, Rules
from server.dose.units import UnitTable
from server.fhir import facts
from server.fhir.acquisitions import acquisitions_of_events, classify_event, event_procedure
from server.fhir.datatypes import ImagingStudy
from server.fhir.mapping import (
    CLASSIFICATION_URL,
    DCM,
    apply_classification,
    classifying_rule,
    extension,
)
from server.fhir.service import FhirService, body_of
from server.store.port import Transaction

_PAGE = 200
MARKED = "marked-qa"  # the rule of a study a person marked no patient examination


def reclassify(
    service: FhirService,
    rules: Rules,
    units: UnitTable,
    progress: Callable[[int], None] = lambda done: None,
) -> Counter[str]:
    """Every study, one transaction each; counts of the outcomes: changed (another
    procedure), unmatched (no rule matches now), confirmed (the same procedure, decided by
    the current version), unchanged and marked (a person marked it no patient examination:
    the rules leave it as it is)."""
    tally: Counter[str] = Counter()
    offset = 0
    while True:
        page = service.search("ImagingStudy", [("_count", str(_PAGE)), ("_offset", str(offset))])
        for stored in page.matches:
            study = body_of(stored)
            if classifying_rule(study) == MARKED:
                tally["marked"] += 1
                continue
            with service.store.transaction() as tx:
                tally[reclassify_study(service, tx, study, rules, units)] += 1
        offset += len(page.matches)
        progress(offset)
        if len(page.matches) < _PAGE:
            return tally


def reclassify_study(
    service: FhirService,
    tx: Transaction,
    study: dict[str, Any],
    rules: Rules,
    units: UnitTable,
    marked_by: str = "",
) -> str:
    """The study classified by the rules, or marked no patient examination by `marked_by`
    (MARKED); its events and dose facts following. The outcome."""
    study_ref = f"ImagingStudy/{study['id']}"
    pairs = [("part-of", study_ref), ("code", f"{DCM}|113852")]
    events = [body_of(s) for s in service.all_in(tx, "Observation", pairs)]
    exam = exam_of(study, events)
    found = (
        Classified(MARKED, None, rules.version, HIGH)
        if marked_by
        else rules.classify_study(exam, acquisitions_of_events(events, exam.modality))
    )
    new_study = dict(study)
    text = ((study.get("procedureCode") or [{}])[0]).get("text")
    # a stored study is one Kerma built: of the shape it builds
    apply_classification(cast(ImagingStudy, new_study), found, text, rules.version)
    decision = extension(new_study, CLASSIFICATION_URL)
    if marked_by and decision is not None:
        decision["extension"].append({"url": "markedBy", "valueString": marked_by})
    new_events = [dict(e) for e in events]
    for event in new_events:
        procedure = found.procedure if found else None
        # nothing of a marked study is a patient procedure, as of a study the QA rule decided
        study_rule = "qa" if marked_by else found.rule if found else ""
        classify_event(event, exam.modality, rules, procedure, study_rule)
    if _decisions(new_study, new_events) == _decisions(study, events):
        return "unchanged"
    service.update_in(tx, "ImagingStudy", study["id"], new_study, trusted=True)
    for old, new in zip(events, new_events, strict=True):
        if new != old:
            service.update_in(tx, "Observation", new["id"], new, trusted=True)
    if _procedures(new_study, new_events) == _procedures(study, events):
        return "confirmed"  # the same procedures, now decided by this version of the rules
    facts.refresh(service, tx, study_ref, units)
    return "unmatched" if found is None else "changed"


def _decisions(study: dict[str, Any], events: list[dict[str, Any]]) -> list[Any]:
    """What classification decided: procedures, rules and version."""
    return [
        study.get("procedureCode"),
        *(extension(r, CLASSIFICATION_URL) for r in (study, *events)),
    ]


def _procedures(study: dict[str, Any], events: list[dict[str, Any]]) -> list[Any]:
    """What statistics see of it: the study's procedure, whether it is one (or QA, or not
    classified), and each acquisition's procedure."""
    return [study.get("procedureCode"), facts.category(study),
            *(event_procedure(e) for e in events)]  # fmt: skip


def exam_of(study: dict[str, Any], events: list[dict[str, Any]]) -> Exam:
    """The words of a stored study, as classification reads them from a report."""
    modality = next((m["code"] for m in study.get("modality", []) if m["code"] != "SR"), "")
    protocols = [str(e["method"]["text"]) for e in events if (e.get("method") or {}).get("text")]
    return Exam(
        modality=modality,
        requested_procedure=((study.get("procedureCode") or [{}])[0]).get("text", ""),
        description=study.get("description", ""),
        protocols=tuple(dict.fromkeys(protocols)),
        events=len(events),
    )
