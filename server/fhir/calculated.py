"""Values Kerma calculates (H4: effective dose) as their own Observations, derived from the
dose summary they were calculated from and never written into it, each with its method,
inputs, version and uncertainty, and a Provenance naming the algorithm.
"""

from __future__ import annotations

from typing import Any

from server.dose.effective import EffectiveDose
from server.fhir.mapping import DCM, UCUM

CALCULATED_ID = "https://kerma.example.org/fhir/NamingSystem/calculated"
METHODS = "https://kerma.example.org/fhir/CodeSystem/calculation-method"
CALCULATED_TAG = {"system": "https://kerma.example.org/fhir/CodeSystem/source",
                  "code": "calculated", "display": "calculated by Kerma"}  # fmt: skip
ALGORITHM = "kerma-effective-dose-1"  # the version of the way E is calculated here
POPULATION_NOTE = (
    "Population estimate for a reference person (ICRP {icrp} tissue weighting factors): for "
    "comparing examinations and practices, not the dose or the risk of this patient."
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
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "identifier": [{"system": CALCULATED_ID, "value": f"effective-dose:{study_uid}"}],
        "meta": {"tag": [CALCULATED_TAG]},
        "status": "final",
        "code": {
            "coding": [{"system": DCM, "code": "113839", "display": "Effective Dose"}],
            "text": "Effective dose, calculated (population estimate)",
        },
        "partOf": summary.get("partOf", []),
        "derivedFrom": [{"reference": f"Observation/{summary['id']}"}],
        "valueQuantity": {
            "value": round(estimate.effective_dose_msv, 4),
            "unit": "mSv",
            "system": UCUM,
            "code": "mSv",
        },
        "method": {
            "coding": [
                {
                    "system": METHODS,
                    "code": "dlp-k-factor",
                    "display": f"DLP x k ({estimate.set}, {estimate.region}, ICRP {estimate.icrp})",
                }
            ]
        },
        "component": inputs,
        "note": [{"text": POPULATION_NOTE.format(icrp=estimate.icrp)}],
    }
    for key in ("subject", "effectiveDateTime", "device"):
        if key in summary:
            observation[key] = summary[key]
    return observation


def provenance(target: str, source: str, estimate: EffectiveDose, recorded: str) -> dict[str, Any]:
    return {
        "resourceType": "Provenance",
        "target": [{"reference": target}],
        "recorded": recorded,
        "activity": {"text": "calculated"},
        "agent": [
            {
                "who": {
                    "display": f"Kerma {ALGORITHM} (k-factors {estimate.set}, ICRP {estimate.icrp})"
                }
            }
        ],
        "entity": [{"role": "source", "what": {"reference": source}}],
    }


def _quantity(
    code: str, display: str, value: float, unit: str, system: str = DCM
) -> dict[str, Any]:
    return {"code": {"coding": [{"system": system, "code": code, "display": display}]},
            "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}}  # fmt: skip
