"""One study as its page shows it, read from the stored resources and the study's dose facts
(the numbers statistics use): nothing here computes a dose."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from server.alerts.review import Alert, work_list
from server.auth.access import Access
from server.calculated.observations import CALCULATED_ID, PEAK_SKIN_DOSE, SKIN_MAP_CODE
from server.classification.reclassify import MARKED
from server.dose.facts import LEVEL_FIELDS, DoseFact
from server.fhir.errors import FhirError
from server.fhir.mapping.codes import CLASSIFICATION_URL
from server.fhir.mapping.study import classifying_rule, extension
from server.fhir.service import FhirService, body_of
from server.stats.service import Query, Statistics

SUMMARY_CODE = "73569-6"
# event columns of the dose facts, in the table's order (shown when an event has them)
EVENT_FIELDS = ("ctdivol_mgy", "dlp_mgy_cm", "ssde_mgy", "dap_gy_m2", "dose_rp_gy", "agd_mgy",
                "fluoro_time_s", "kvp_kv", "tube_current_ma", "exposure_mas", "pitch_factor",
                "collimation_mm", "exposure_index")  # fmt: skip
_UCUM = {"mGy.cm": "mGy·cm", "Gy.m2": "Gy·m²", "cGy.cm2": "cGy·cm²", "a": "years", "1": "",
         "cm2": "cm²", "mGy.cm2": "mGy·cm²", "mSv/(mGy.cm)": "mSv/(mGy·cm)", "/cm": "per cm"}  # fmt: skip


@dataclass(frozen=True)
class Value:
    name: str
    text: str


@dataclass(frozen=True)
class Event:
    observation: str  # "Observation/<id>"
    when: str
    protocol: str
    kind: str  # acquisition type
    numbers: dict[str, float]  # dose-facts field -> value
    details: tuple[Value, ...]  # every component, as recorded


@dataclass(frozen=True)
class Comparison:
    quantity: str  # dose-facts field
    where: str  # "examination" or "highest irradiation event"
    value: float
    set: str
    examination: str
    level: float

    @property
    def ratio(self) -> float:
        return self.value / self.level


@dataclass(frozen=True)
class Calculated:
    observation: str
    title: str
    value: str
    method: str
    inputs: tuple[Value, ...]
    note: str
    absent: str  # why there is no value
    skin_map: bool


@dataclass
class StudyView:
    rid: str
    uid: str
    started: str
    description: str
    accession: str
    modalities: list[str]
    procedure: str
    classification: str
    patient_ref: str
    patient: dict[str, Any]
    device: str
    device_name: str
    summary: str
    institution: str = ""  # as the study's report names it (a device may serve several)
    totals: list[Value] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    event_fields: list[str] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    calculated: list[Calculated] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # what the checks of the report found


def of(service: FhirService, gate: Access, rid: str, stats: Statistics) -> StudyView:
    """The study `ImagingStudy/<rid>` as the user may see it (403/404 as the API answers)."""
    gate.require("ImagingStudy")
    stored = service.read("ImagingStudy", rid)
    if not gate.may_read(stored):
        raise FhirError.of(403, "forbidden", "this study is not one you may see")
    study = body_of(stored)
    uid = next((i["value"].removeprefix("urn:oid:") for i in study.get("identifier", [])
                if i.get("system") == "urn:dicom:uid"), "")  # fmt: skip
    observations = [body_of(s) for s in service.all_in(
        service.store, "Observation", [("part-of", f"ImagingStudy/{rid}")], gate=gate)]  # fmt: skip
    summary = next((o for o in observations if _code(o) == SUMMARY_CODE), {})
    device = summary.get("device", {}).get("reference", "")
    if gate.devices is not None and device not in gate.devices:
        raise FhirError.of(403, "forbidden", "this study is not from a device you work on")
    patient_ref = study.get("subject", {}).get("reference", "")
    view = StudyView(
        rid, uid, study.get("started", ""), study.get("description", ""), _accession(study),
        [m.get("code", "") for m in study.get("modality", []) if m.get("code") != "SR"],
        _procedure(study), _classification(study), patient_ref,
        _patient(service, gate, patient_ref), device, stats.device_name(device) if device else "",
        summary.get("id", ""), study.get("location", {}).get("display", ""),
    )  # fmt: skip
    view.totals = [v for c in summary.get("component", []) if (v := _component(c)) and _is_dose(c)]
    view.flags = [str(n.get("text", "")) for n in summary.get("note", [])]
    facts = service.store.facts(uid) if uid else []
    details = {f"Observation/{o['id']}": o for o in observations}
    view.events = [_event(f, details.get(f.resource, {})) for f in facts if f.level == "event"]
    view.events.sort(key=lambda e: e.when)
    view.event_fields = [n for n in EVENT_FIELDS if any(n in e.numbers for e in view.events)]
    view.comparisons = _comparisons(stats, facts, view.procedure)
    view.alerts = work_list(service, gate, status="", implicated=f"ImagingStudy/{rid}")
    view.calculated = [_calculated(o) for o in observations
                       if any(i.get("system") == CALCULATED_ID for i in o.get("identifier", []))]  # fmt: skip
    return view


def _code(resource: dict[str, Any]) -> str:
    return str(resource.get("code", {}).get("coding", [{}])[0].get("code", ""))


def _accession(study: dict[str, Any]) -> str:
    return next((i.get("value", "") for i in study.get("identifier", [])
                 if i.get("type", {}).get("coding", [{}])[0].get("code") == "ACSN"), "")  # fmt: skip


def _procedure(study: dict[str, Any]) -> str:
    code = (study.get("procedureCode") or [{}])[0]
    return str(code.get("coding", [{}])[0].get("display") or code.get("text") or "")


def _classification(study: dict[str, Any]) -> str:
    """How the study got its standard procedure: the rule, the rules' version and how sure."""
    found = extension(study, CLASSIFICATION_URL)
    if found is None:
        return "not classified yet"
    said = {e["url"]: e.get("valueInteger", e.get("valueCode", e.get("valueString")))
            for e in found["extension"]}  # fmt: skip
    version = said.get("version", "?")
    rule = classifying_rule(study)
    if rule == MARKED:
        return f"marked-qa: no patient examination, marked by {said.get('markedBy', 'someone')}"
    if rule == "unmatched":
        return f"no rule of the classification rules (version {version}) matched"
    sure = f"; confidence {said['confidence']}" if said.get("confidence") else ""
    return f"rule {rule} of the classification rules, version {version}{sure}"


def _patient(service: FhirService, gate: Access, ref: str) -> dict[str, Any]:
    if not ref:
        return {}
    try:
        gate.require("Patient")
    except FhirError:
        return {}
    stored = service.store.read(*ref.split("/", 1))
    return body_of(stored) if stored and gate.may_read(stored) else {}


def _is_dose(component: dict[str, Any]) -> bool:
    return "valueQuantity" in component


def _component(component: dict[str, Any]) -> Value | None:
    coding = component.get("code", {}).get("coding", [{}])[0]
    # the text tells apart a per-pulse quantity's mean, range and values, which share a code
    name = component.get("code", {}).get("text") or coding.get("display") or coding.get("code", "")
    text = value_text(component)
    return Value(str(name), text) if text else None


def _unit(quantity: dict[str, Any]) -> str:
    return str(_UCUM.get(quantity.get("code", ""), quantity.get("unit", "")))


def value_text(element: dict[str, Any]) -> str:
    """A component's or an Observation's value as words: "724.52 mGy·cm", "HFS"."""
    if "valueQuantity" in element:
        q = element["valueQuantity"]
        unit = _unit(q)
        value = q.get("value")
        # six significant digits: what the report says, without binary artefacts (0.09999999999999998)
        return (
            f"{value:.6g} {unit}".strip() if isinstance(value, int | float) else f"{value} {unit}"
        )
    if "valueRange" in element:
        low, high = (
            value_text({"valueQuantity": element["valueRange"][k]}) for k in ("low", "high")
        )
        return f"{low} to {high}"
    if "valueSampledData" in element:
        sampled = element["valueSampledData"]
        return f"{sampled['data']} {_unit(sampled['origin'])}".strip()
    if "valueCodeableConcept" in element:
        concept = element["valueCodeableConcept"]
        return str(concept.get("text") or concept.get("coding", [{}])[0].get("display")
                   or concept.get("coding", [{}])[0].get("code", ""))  # fmt: skip
    for key in ("valueString", "valueInteger", "valueDateTime", "valueBoolean"):
        if key in element:
            return str(element[key])
    return ""


def _event(fact: DoseFact, observation: dict[str, Any]) -> Event:
    numbers = {n: float(v) for n in EVENT_FIELDS if (v := getattr(fact, n)) is not None}
    details = tuple(v for c in observation.get("component", []) if (v := _component(c)))
    return Event(fact.resource, observation.get("effectiveDateTime", ""), fact.protocol or "",
                 fact.acquisition_type or "", numbers, details)  # fmt: skip


def _comparisons(stats: Statistics, facts: list[DoseFact], procedure: str) -> list[Comparison]:
    """The study's values against the DRLs of its standard procedure: totals per examination,
    and the highest irradiation event for levels set per event."""
    found = []
    for quantity, level in dict.fromkeys(LEVEL_FIELDS.values()):
        values = [v for f in facts if f.level == level and (v := getattr(f, quantity)) is not None
                  and not math.isnan(v)]  # fmt: skip
        if not values or not procedure:
            continue
        where = "examination" if level == "study" else "highest irradiation event"
        for c in stats.levels_of(Query(quantity, level), procedure):
            found.append(Comparison(quantity, where, max(values), c.set, c.examination, c.level))
    return found


def _calculated(observation: dict[str, Any]) -> Calculated:
    code = observation.get("code", {})
    inputs = tuple(v for c in observation.get("component", [])
                   if "valueSampledData" not in c and (v := _component(c)))  # fmt: skip
    has_map = any(SKIN_MAP_CODE in {x.get("code") for x in c["code"].get("coding", [])}
                  for c in observation.get("component", []))  # fmt: skip
    return Calculated(
        f"Observation/{observation['id']}", str(code.get("text") or _code(observation)),
        value_text(observation), observation.get("method", {}).get("coding", [{}])[0].get("display", ""),
        inputs, " ".join(n.get("text", "") for n in observation.get("note", [])),
        observation.get("dataAbsentReason", {}).get("text", ""),
        _code(observation) == PEAK_SKIN_DOSE and has_map,
    )  # fmt: skip
