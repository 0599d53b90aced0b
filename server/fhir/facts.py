"""Build the dose facts of a study from its stored FHIR resources (events, summary, study).

Values are read from the Observations' components by code and converted from the unit the
component states to the unit the fact names, so the projection never depends on how a report
arrived (RDSR, image headers) and can be rebuilt from the store at any time.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson

from server.dose.facts import DoseFact, plausible
from server.dose.units import UnitTable
from server.fhir.acquisitions import event_procedure
from server.fhir.mapping.study import classifying_rule
from server.fhir.service import FhirService
from server.fhir.values import date_range
from server.mappings import plausibility_bounds
from server.store.port import Transaction

# fact field -> (component code, unit of the field)
_EVENT_VALUES = {
    "ctdivol_mgy": ("113830", "mGy"),
    "dlp_mgy_cm": ("113838", "mGy.cm"),
    "ssde_mgy": ("113930", "mGy"),
    "dap_gy_m2": ("122130", "Gy.m2"),
    "dose_rp_gy": ("113738", "Gy"),
    "agd_mgy": ("111631", "mGy"),
    "exposure_index": ("113845", "1"),
    "kvp_kv": ("113733", "kV"),
    "fluoro_time_s": ("113742", "s"),
    "tube_current_ma": ("113734", "mA"),
    "pitch_factor": ("113828", "1"),
    "collimation_mm": ("113827", "mm"),
}
_STUDY_VALUES = {
    "dlp_mgy_cm": ("113813", "mGy.cm"),
    "ctdivol_mgy": ("113830", "mGy"),
    "dap_gy_m2": ("113722", "Gy.m2"),
    "dose_rp_gy": ("113725", "Gy"),
    "fluoro_time_s": ("113730", "s"),
    "age_years": ("30525-0", "a"),
}


def study_facts(
    study: dict[str, Any],
    summary: dict[str, Any],
    events: list[dict[str, Any]],
    measurements: dict[str, float],
    units: UnitTable,
) -> list[DoseFact]:
    """The study's rows: one per event, one for the study total; none while the summary is
    preliminary (OCR values waiting for review are no fact for statistics); values no
    examination can have (mappings/dose/plausibility.yaml `facts`) left out."""
    if summary.get("status") == "preliminary":
        return []
    study_uid = str(study["identifier"][0]["value"]).removeprefix("urn:oid:")
    modality = next((m["code"] for m in study.get("modality", []) if m["code"] != "SR"), "")
    common: dict[str, Any] = {
        "study_uid": study_uid,
        "modality": modality,
        "patient": study.get("subject", {}).get("reference"),
        "procedure": _procedure(study),
        "category": category(study),
        "age_years": _value(summary, "30525-0", "a", units),
        "weight_kg": measurements.get("weight_kg"),
        "size_m": measurements.get("size_m"),
    }
    rows = [_event_fact(event, common, units) for event in events]
    agd = {_laterality(c): _quantity(c, "mGy", units) for c in _components(summary, "111637")}
    totals: dict[str, Any] = {
        name: _value(summary, code, unit, units)
        for name, (code, unit) in _STUDY_VALUES.items()
        if name != "age_years"
    }
    rows.append(
        DoseFact(
            key=f"study:{study_uid}",
            level="study",
            resource=f"Observation/{summary['id']}",
            device=summary.get("device", {}).get("reference"),
            date=_epoch(summary.get("effectiveDateTime")),
            events=len(events),
            agd_left_mgy=agd.get("left"),
            agd_right_mgy=agd.get("right"),
            agd_mgy=sum(v for v in agd.values() if v is not None) if agd else None,
            **totals,
            **common,
        )
    )
    bounds = plausibility_bounds()["facts"]
    return [plausible(row, bounds) for row in rows]


def category(study: dict[str, Any]) -> str:
    """A standard procedure; no rule matched; or a rule that says it is no patient procedure
    (`procedure: null` in mappings/classification/rules.yaml: QA, phantoms, physics)."""
    if ((study.get("procedureCode") or [{}])[0]).get("coding"):
        return "procedure"
    return "unclassified" if classifying_rule(study) == "unmatched" else "qa"


def _procedure(study: dict[str, Any]) -> str | None:
    """The standard procedure when classified, else the study's own words."""
    code = (study.get("procedureCode") or [{}])[0]
    coding = (code.get("coding") or [{}])[0]
    return coding.get("display") or code.get("text") or study.get("description")


def _event_fact(event: dict[str, Any], common: dict[str, Any], units: UnitTable) -> DoseFact:
    uid = str(event["identifier"][0]["value"]).removeprefix("urn:oid:")
    # Irradiation Event UIDs are meant to be unique, but copied or edited objects reuse them
    key = f"event:{common['study_uid']}:{uid}"
    acquisition = _coding(event, "113820") or _coding(event, "113721")
    values: dict[str, Any] = {
        name: _value(event, code, unit, units) for name, (code, unit) in _EVENT_VALUES.items()
    }
    values["exposure_mas"] = _exposure_mas(event, values["tube_current_ma"], units)
    return DoseFact(
        key=key,
        level="event",
        resource=f"Observation/{event['id']}",
        device=event.get("device", {}).get("reference"),
        date=_epoch(event.get("effectiveDateTime")),
        protocol=event.get("method", {}).get("text"),
        body_region=_text(event.get("bodySite")),
        acquisition_type=acquisition.get("display") if acquisition else None,
        **values,
        **{**common, **_event_procedure(event, common)},
    )


def _event_procedure(event: dict[str, Any], study: dict[str, Any]) -> dict[str, Any]:
    """The acquisition's own standard procedure (None: it is none, e.g. a localizer), else
    the study's; with its category (a QA study's acquisitions stay QA)."""
    classified, coding = event_procedure(event)
    if not classified or study["category"] == "qa":
        return {"procedure": study["procedure"], "category": study["category"]}
    return {"procedure": (coding or {}).get("display"),
            "category": "procedure" if coding else study["category"]}  # fmt: skip


def _exposure_mas(
    event: dict[str, Any], current_ma: float | None, units: UnitTable
) -> float | None:
    """A radiograph's exposure as recorded; a CT acquisition's tube current times the time of
    one rotation (the mAs CT protocols are set in)."""
    recorded = _value(event, "113736", "mA.s", units)
    rotation_s = _value(event, "113834", "s", units)
    if recorded is not None or current_ma is None or rotation_s is None:
        return recorded
    return round(current_ma * rotation_s, 6)


def _components(resource: dict[str, Any], code: str) -> list[dict[str, Any]]:
    return [c for c in resource.get("component", []) if c["code"]["coding"][0]["code"] == code]


def _quantity(component: dict[str, Any], unit: str, units: UnitTable) -> float | None:
    q = component.get("valueQuantity")
    if q is None:
        return None
    return units.convert(float(q["value"]), q.get("code") or q.get("unit", ""), unit)


def _value(resource: dict[str, Any], code: str, unit: str, units: UnitTable) -> float | None:
    """The first component with this code and a quantity (e.g. the study-wide DAP, not a plane's)."""
    for component in _components(resource, code):
        value = _quantity(component, unit, units)
        if value is not None:
            return value
    return None


def _coding(resource: dict[str, Any], code: str) -> dict[str, Any] | None:
    for component in _components(resource, code):
        codings = component.get("valueCodeableConcept", {}).get("coding")
        if codings:
            return codings[0]  # type: ignore[no-any-return]
    return None


def _laterality(component: dict[str, Any]) -> str:
    display = component["code"]["coding"][0].get("display", "").lower()
    return "left" if "left" in display else "right" if "right" in display else "both"


def _text(concept: dict[str, Any] | None) -> str | None:
    if not concept:
        return None
    if concept.get("text"):
        return str(concept["text"])
    coding = (concept.get("coding") or [{}])[0]
    found = coding.get("display") or coding.get("code")
    return str(found) if found else None


def _epoch(value: str | None) -> float | None:
    return date_range(value)[0] if value else None


def rebuild(service: FhirService, units: UnitTable) -> int:
    """Recompute the whole projection from the stored resources; returns the studies done."""
    done = 0
    offset = 0
    while True:
        page = service.search(
            "Observation",
            [("code", f"{LOINC}|73569-6"), ("_count", "200"), ("_offset", str(offset))],
        )
        for stored in page.matches:
            summary = orjson.loads(stored.body or b"{}")
            with service.store.transaction() as tx:
                refresh(service, tx, summary["partOf"][0]["reference"], units, summary)
            done += 1
        if len(page.matches) < 200:
            return done
        offset += 200


def refresh(
    service: FhirService,
    tx: Transaction,
    study_ref: str,
    units: UnitTable,
    summary: dict[str, Any] | None = None,
) -> None:
    """Recompute one study's rows from its stored resources (after a merge or a reassign
    changed whose they are)."""
    if summary is None:
        found = _search_all(service, tx, [("part-of", study_ref), ("code", f"{LOINC}|73569-6")])
        if not found:
            return
        summary = found[0]
    stored = tx.read(*study_ref.split("/"))
    if stored is None or stored.deleted:
        return
    study = orjson.loads(stored.body or b"{}")
    events = _search_all(service, tx, [("part-of", study_ref), ("code", f"{DCM}|113852")])
    measurements = {
        name: float(found[0]["valueQuantity"]["value"])
        for code, name in (("8302-2", "size_m"), ("29463-7", "weight_kg"))
        if (
            found := _search_all(service, tx, [("part-of", study_ref), ("code", f"{LOINC}|{code}")])
        )
    }
    study_uid = str(study["identifier"][0]["value"]).removeprefix("urn:oid:")
    tx.replace_facts(study_uid, study_facts(study, summary, events, measurements, units))


def _search_all(
    service: FhirService, reader: Transaction, pairs: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    request = service.parse_search("Observation", pairs)
    matches, _ = reader.search(replace(request.query, count=1_000_000, with_total=False))
    return [orjson.loads(s.body or b"{}") for s in matches]


LOINC = "http://loinc.org"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
