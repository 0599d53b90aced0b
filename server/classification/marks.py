"""A physicist marks a study as no patient examination (a QA, phantom, service or test
exposure the rules did not recognise), or gives it back to the rules. A marked study keeps
its mark when the rules change and stored studies are classified again; its dose facts are
QA (left out of statistics, reports, surveys and DRL proposals, and counted)."""

from __future__ import annotations

from typing import Any

from server.classification.reclassify import reclassify_study
from server.dose.classify import Rules
from server.dose.units import UnitTable
from server.fhir.errors import FhirError
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
        reclassify_study(service, tx, study, rules, units, marked_by=by if qa else "")
        again = tx.read("ImagingStudy", rid)
        return body_of(again) if again is not None else study
