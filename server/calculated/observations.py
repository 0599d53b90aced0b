"""Values Kerma calculates (H4 effective dose, H7 SSDE, H8 peak skin dose and skin dose map) as
their own Observations, derived from the dose summary or event they were calculated from and
never written into it, each with its method, inputs, version and uncertainty, and a
Provenance naming the algorithm.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from server.calculated.skin_map import Layout
from server.dose.effective import ByAcquisition, EffectiveDose
from server.dose.skin import SkinDoseMap
from server.dose.ssde import Estimate as SsdeEstimate
from server.fhir.mapping import DCM, LOINC, UCUM, component_value
from server.fhir.mapping.codes import ABSENT_REASON as ABSENT

CALCULATED_ID = "https://kerma.example.org/fhir/NamingSystem/calculated"
METHODS = "https://kerma.example.org/fhir/CodeSystem/calculation-method"
CALCULATED_TAG = {"system": "https://kerma.example.org/fhir/CodeSystem/source",
                  "code": "calculated", "display": "calculated by Kerma"}  # fmt: skip
ALGORITHM = "kerma-effective-dose-1"  # the version of the way E is calculated here
SSDE_ALGORITHM = "kerma-ssde-1"
SSDE_NOTE = (
    "Size-specific dose estimate (AAPM Reports 204 and 220): the device's CTDIvol times the "
    "conversion factor for a patient of this diameter; an estimate of the average dose at the "
    "centre of the scanned range, not a measurement. The fit's factor changes by the stated "
    "fraction per cm of error in the diameter."
)
SSDE_AGE_NOTE = (
    " The diameter is the average effective diameter of children of this age (AAPM 204), not "
    "this child's: a child larger or smaller than the average gets a lower or higher dose."
)
CALCULATED_DOSE = "https://kerma.example.org/fhir/CodeSystem/calculated-dose"
SKIN_MAP_CODE = "skin-dose-map"
PEAK_SKIN_DOSE = "peak-skin-dose"  # also the quantity alert rules name it by (mGy)
SKIN_MAP_FACTOR_GY = 1e-6  # the map's cells are whole uGy
# the displayed Ka,r may be 35 % off (IEC 60601-2-43, 21 CFR 1020.32(k)); the rest adds to it
SKIN_DOSE_UNCERTAINTY = 0.35
SKIN_DOSE_NOTE = (
    "Calculated estimate from the RDSR's reference air kerma and geometry on a phantom sized "
    "from the patient's height and mass, not a measurement: at least +/-35 % (the displayed "
    "reference air kerma's own tolerance), more where the table reference point, the patient "
    "size or the position were assumed. Map rows run from the top of the head down (1 cm), "
    "columns round the torso seen from the front (anterior right to left, left side, back left "
    "to right, right side); cells that are not skin are E."
)
POPULATION_NOTE = (
    "Population estimate for a reference person (ICRP {icrp} tissue weighting factors): for "
    "comparing examinations and practices, not the dose or the risk of this patient."
)

BY_ACQUISITION_NOTE = (
    " The examination {why}: E is the sum over its acquisitions of each one's DLP times the "
    "k-factor of the region the acquisition was classified to."
)


def effective_dose_observation(
    estimate: EffectiveDose, summary: dict[str, Any], study_uid: str
) -> dict[str, Any]:
    """E = k x DLP of one CT examination, derived from its dose summary."""
    inputs = [
        _quantity("113813", "CT Dose Length Product Total", estimate.dlp_mgy_cm, "mGy.cm"),
        _quantity("k-factor", "k-factor used", estimate.k, "mSv/(mGy.cm)", METHODS),
        _quantity("age-used", "tabulated age used", estimate.age_years, "a", METHODS),
        _quantity(
            "spread",
            "uncertainty: spread of the published k-factors for this region "
            "and age, relative to the k used",
            estimate.spread,
            "1",
            METHODS,
        ),
    ]
    if estimate.kvp is not None:
        inputs.append(_quantity("113733", "KVP", estimate.kvp, "kV"))
    method = {"system": METHODS, "code": "dlp-k-factor",
              "display": f"DLP x k ({estimate.set}, {estimate.region}, ICRP {estimate.icrp})"}  # fmt: skip
    return _effective_dose(study_uid, "", estimate.effective_dose_msv, method, inputs,
                           POPULATION_NOTE.format(icrp=estimate.icrp), summary)  # fmt: skip


def _effective_dose(
    study_uid: str, how: str, msv: float, method: dict[str, Any], inputs: list[dict[str, Any]],
    note: str, summary: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    return _calculated(
        f"effective-dose:{study_uid}",
        {"coding": [{"system": DCM, "code": "113839", "display": "Effective Dose"}],
         "text": f"Effective dose, calculated{how} (population estimate)"},
        _value(round(msv, 4), "mSv"), method, inputs, note, summary,
    )  # fmt: skip


def effective_dose_by_acquisition_observation(
    estimate: ByAcquisition, summary: dict[str, Any], study_uid: str, why: str
) -> dict[str, Any]:
    """E of a CT examination of no k-factor region (`why`: "has no standard procedure", "is
    ct-rt-planning, of no one region"), as the sum over its acquisitions of DLP x k of each
    one's region, derived from its dose summary."""
    first = estimate.parts[0]
    inputs = [
        _quantity("113813", "CT Dose Length Product of the acquisitions counted",
                  round(estimate.dlp_mgy_cm, 4), "mGy.cm"),
        _quantity("dlp-left-out", "DLP of acquisitions of no region, not counted (localizers, "
                  "bolus tracking)", round(estimate.left_out_dlp_mgy_cm, 4), "mGy.cm", METHODS),
        _quantity("age-used", "tabulated age used", first.age_years, "a", METHODS),
        _quantity("spread", "uncertainty: largest spread of the published k-factors of the "
                  "regions, relative to the k used", estimate.spread, "1", METHODS),
    ]  # fmt: skip
    for region, (dlp, e) in estimate.by_region().items():
        inputs += [
            _quantity("dlp-region", f"DLP of the {region} acquisitions", round(dlp, 4), "mGy.cm",
                      METHODS),
            _quantity("effective-dose-region", f"Effective dose of the {region} acquisitions",
                      round(e, 4), "mSv", METHODS),
        ]  # fmt: skip
    regions = ", ".join(estimate.by_region())
    method = {"system": METHODS, "code": "dlp-k-factor-per-acquisition",
              "display": f"sum of DLP x k per acquisition ({first.set}, {regions}, ICRP {first.icrp})"}  # fmt: skip
    note = POPULATION_NOTE.format(icrp=first.icrp) + BY_ACQUISITION_NOTE.format(why=why)
    return _effective_dose(study_uid, " per acquisition", estimate.effective_dose_msv, method,
                           inputs, note, summary)  # fmt: skip


def skin_dose_observation(
    found: SkinDoseMap, summary: dict[str, Any], study_uid: str
) -> dict[str, Any]:
    """The peak skin dose of a fluoroscopy examination, with the map it is the peak of (as
    SampledData, one row of the map after the other) and what went into it; without value,
    map or areas (dataAbsentReason, saying why) when the beams mostly miss the phantom."""
    phantom = found.phantom
    size = "assumed (reference person)" if phantom.size_assumed else "from the patient's record"
    inputs = [
        _quantity("8302-2", f"Body height, {size}", phantom.height_cm, "cm", LOINC),
        _quantity("29463-7", f"Body weight, {size}", phantom.mass_kg, "kg", LOINC),
        _coded("patient-position", "patient position" + (", assumed" if phantom.position.assumed else ""),
               phantom.position.code),
        _quantity("events-mapped", "irradiation events mapped", found.events_mapped, "1", METHODS),
        _quantity("events-skipped", "irradiation events without the data to map them",
                  len(found.events_skipped), "1", METHODS),
        _quantity("113725", "Dose (RP) Total", round(found.ka_r_total_gy, 6), "Gy"),
        _quantity("ka-r-mapped", "Dose (RP) of the mapped events", round(found.ka_r_mapped_gy, 6),
                  "Gy", METHODS),
        _quantity("dap-on-phantom", "fraction of the DAP whose beam met the phantom",
                  round(found.dap_on_phantom, 4), "1", METHODS),
        {"code": {"coding": [{"system": METHODS, "code": "table-reference",
                              "display": "table positions read as"}]},
         "valueString": found.table.name},
        _quantity("uncertainty", "uncertainty: relative, at least", SKIN_DOSE_UNCERTAINTY, "1", METHODS),
        _quantity("events-kvp-assumed", "mapped events without a tube voltage (backscatter "
                  "factor at an assumed kVp)", found.assumed_kvp_events, "1", METHODS),
    ]  # fmt: skip
    unfit = found.unfit
    if unfit is None:
        inputs += _map_components(found)
    observation = _calculated(
        f"skin-dose:{study_uid}",
        {"coding": [{"system": CALCULATED_DOSE, "code": PEAK_SKIN_DOSE, "display": "Peak skin dose"}],
         "text": "Peak skin dose, calculated (skin dose map)"},
        _value(round(found.peak_skin_dose_gy, 6), "Gy") if unfit is None else None,
        {"system": METHODS, "code": "skin-dose-map",
         "display": f"Ka,r x inverse square x table transmission x BSF.f on a sized phantom "
                    f"({found.version})"},
        inputs,
        SKIN_DOSE_NOTE if unfit is None else f"No peak skin dose: {unfit}.",
        summary,
    )  # fmt: skip
    if unfit is not None:
        observation["dataAbsentReason"] = {
            "coding": [{"system": ABSENT, "code": "error"}],
            "text": unfit,
        }
    return observation


def _map_components(found: SkinDoseMap) -> list[dict[str, Any]]:
    phantom = found.phantom
    return [
        *(_quantity(f"area-{t:g}-gy", f"skin area at or above {t:g} Gy",
                    round(found.area_at_least_cm2(t), 1), "cm2", METHODS)
          for t in found.thresholds_gy),
        _quantity("map-front-columns", "map columns of the front (as many of the back)",
                  phantom.columns[0], "1", METHODS),
        _quantity("map-side-columns", "map columns of each side", phantom.columns[1], "1", METHODS),
        {"code": {"coding": [{"system": CALCULATED_DOSE, "code": SKIN_MAP_CODE,
                              "display": "Skin dose map"}]},
         "valueSampledData": _sampled(found.dose_gy)},
    ]  # fmt: skip


def ssde_observation(
    estimate: SsdeEstimate, event: dict[str, Any], event_uid: str, age_years: float | None
) -> dict[str, Any]:
    """The SSDE of one CT acquisition, derived from its event Observation (whose CTDIvol and
    phantom it uses)."""
    size = estimate.size
    from_age = size.method.code == "113937"
    inputs = [
        _quantity("113830", "Mean CTDIvol", estimate.ctdivol_mgy, "mGy"),
        _quantity("phantom-cm", "CTDI phantom diameter", float(estimate.phantom), "cm", METHODS),
        _quantity("113980", "Water Equivalent Diameter", round(size.diameter_cm * 10, 1), "mm")
        if size.method.code == "113988"
        else _quantity("113933", "Derived Effective Diameter", round(size.diameter_cm * 10, 1), "mm"),
        _quantity("conversion-factor", "AAPM 204 conversion factor f", round(estimate.factor, 4),
                  "1", METHODS),
        _quantity("uncertainty-per-cm", "uncertainty: relative change of the SSDE per cm of error "
                  "in the patient's diameter", round(estimate.b_per_cm, 5), "/cm", METHODS),
    ]  # fmt: skip
    if from_age and age_years is not None:
        inputs.append(_quantity("age-used", "patient age used", age_years, "a", METHODS))
    note = SSDE_NOTE + (SSDE_AGE_NOTE if from_age else "")
    return _calculated(
        f"ssde:{event_uid}",
        {"coding": [{"system": DCM, "code": "113930", "display": "Size Specific Dose Estimation"}],
         "text": "Size-specific dose estimate, calculated"},
        _value(round(estimate.ssde_mgy, 3), "mGy"),
        {"system": size.method.system, "code": size.method.code, "display": size.method.display},
        inputs,
        note,
        event,
    )  # fmt: skip


def ssde_agent(estimate: SsdeEstimate) -> str:
    return (
        f"Kerma {SSDE_ALGORITHM} (AAPM 204 fit {estimate.version}, {estimate.phantom} cm phantom)"
    )


def _calculated(
    key: str,
    code: dict[str, Any],
    value: dict[str, Any] | None,
    method: dict[str, Any],
    inputs: list[dict[str, Any]],
    note: str,
    source: dict[str, Any],
) -> dict[str, Any]:
    """A calculated Observation: tagged, derived from `source`, of its patient and device."""
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "identifier": [{"system": CALCULATED_ID, "value": key}],
        "meta": {"tag": [CALCULATED_TAG]},
        "status": "final",
        "code": code,
        "partOf": source.get("partOf", []),
        "derivedFrom": [{"reference": f"Observation/{source['id']}"}],
        "method": {"coding": [method]},
        "component": inputs,
        "note": [{"text": note}],
    }
    if value is not None:
        observation["valueQuantity"] = value
    for field in ("subject", "effectiveDateTime", "device"):
        if field in source:
            observation[field] = source[field]
    return observation


def _value(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def skin_dose_grid(observation: dict[str, Any]) -> np.ndarray | None:
    """The map of a peak skin dose Observation (Gy; NaN where not skin), or None."""
    for component in observation.get("component", []):
        codes = {c.get("code") for c in component["code"].get("coding", [])}
        sampled = component.get("valueSampledData")
        if SKIN_MAP_CODE in codes and sampled:
            factor = float(sampled.get("factor", 1.0))
            cells = [math.nan if v == "E" else float(v) * factor for v in sampled["data"].split()]
            return np.array(cells).reshape(-1, int(sampled["dimensions"]))
    return None


def skin_map_layout(observation: dict[str, Any]) -> Layout:
    front, side = (
        component_value(observation, c) for c in ("map-front-columns", "map-side-columns")
    )
    assert front is not None and side is not None, "a skin dose map without its layout"
    return Layout(int(front), int(side))


def _sampled(dose_gy: np.ndarray) -> dict[str, Any]:
    cells = np.rint(dose_gy / SKIN_MAP_FACTOR_GY)
    data = " ".join("E" if math.isnan(v) else str(int(v)) for v in cells.ravel())
    return {"origin": {"value": 0, "unit": "Gy", "system": UCUM, "code": "Gy"},
            "period": 0, "factor": SKIN_MAP_FACTOR_GY, "dimensions": int(dose_gy.shape[1]),
            "data": data}  # fmt: skip


def effective_dose_agent(estimate: EffectiveDose) -> str:
    return f"Kerma {ALGORITHM} (k-factors {estimate.set}, ICRP {estimate.icrp})"


def effective_dose_by_acquisition_agent(estimate: ByAcquisition, why: str) -> str:
    first = estimate.parts[0]
    return (f"Kerma {ALGORITHM} per acquisition: the examination {why} "
            f"(k-factors {first.set}, ICRP {first.icrp})")  # fmt: skip


def skin_dose_agent(found: SkinDoseMap) -> str:
    return (f"Kerma {found.version} (openSkin phantom, Benmakhlouf 2011 backscatter factors, "
            "table transmission of mappings/dose/skin_dose.yaml)")  # fmt: skip


def provenance(target: str, source: str, agent: str, recorded: str) -> dict[str, Any]:
    return {
        "resourceType": "Provenance",
        "target": [{"reference": target}],
        "recorded": recorded,
        "activity": {"text": "calculated"},
        "agent": [{"who": {"display": agent}}],
        "entity": [{"role": "source", "what": {"reference": source}}],
    }


def _coded(code: str, display: str, value: str) -> dict[str, Any]:
    return {"code": {"coding": [{"system": METHODS, "code": code, "display": display}]},
            "valueCodeableConcept": {"coding": [{"system": METHODS, "code": value}], "text": value}}  # fmt: skip


def _quantity(
    code: str, display: str, value: float, unit: str, system: str = DCM
) -> dict[str, Any]:
    return {"code": {"coding": [{"system": system, "code": code, "display": display}]},
            "valueQuantity": _value(value, unit)}  # fmt: skip
