"""Generator of realistic dose Observations for benchmarks (not a test fixture).

Per CT study: one Radiation Dose Summary Observation (LOINC 73569-6, total DLP, event count)
and three irradiation-event Observations (DCM 113852: CTDIvol, DLP, scan length, kVp, tube
current, exposure time, pitch, phantom, protocol) with the shape of `fhir-dose-mapping.md`.
Patients get one study every ~7 months over three years on one of 20 scanners, so 50,000
patients give 1,000,000 Observations. Values are random but deterministic (seeded).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

DCM = "http://dicom.nema.org/resources/ontology/DCM"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
START = datetime(2023, 1, 1, tzinfo=UTC)
SPAN_DAYS = 3 * 365
DEVICES = 20
EVENTS_PER_STUDY = 3
PROTOCOLS = [
    ("Head", 55.0, 16),
    ("Chest", 9.0, 32),
    ("Abdomen", 12.0, 32),
    ("Thorax-Abdomen", 11.0, 32),
]


def _quantity(code: str, value: float, unit: str) -> dict[str, Any]:
    return {
        "code": {"coding": [{"system": DCM, "code": code}]},
        "valueQuantity": {"value": round(value, 2), "unit": unit, "system": UCUM, "code": unit},
    }


def patient(i: int) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": f"pat-{i}",
        "identifier": [{"system": "urn:oid:1.2.3.4.5", "value": f"PID{i:07d}"}],
        "gender": "female" if i % 2 else "male",
        "birthDate": f"{1930 + i % 90}-{1 + i % 12:02d}-{1 + i % 28:02d}",
    }


def device(i: int) -> dict[str, Any]:
    return {
        "resourceType": "Device",
        "id": f"ct-{i}",
        "identifier": [{"type": {"text": "serial"}, "value": f"SN{i:05d}"}],
        "manufacturer": ["Siemens", "GE", "Philips", "Canon"][i % 4],
        "modelNumber": f"Model {i}",
        "type": {"coding": [{"system": DCM, "code": "CT"}]},
    }


def study_observations(rng: random.Random, patient_id: str, study_no: int) -> list[dict[str, Any]]:
    """The summary and event Observations of one CT study."""
    when = START + timedelta(seconds=rng.randrange(SPAN_DAYS * 86400))
    device_id = f"ct-{rng.randrange(DEVICES)}"
    study_uid = f"1.2.826.0.1.3680043.10.1{study_no}"
    protocol, ctdi_mean, phantom_cm = PROTOCOLS[rng.randrange(len(PROTOCOLS))]
    common = {
        "resourceType": "Observation",
        "status": "final",
        "subject": {"reference": f"Patient/{patient_id}"},
        "device": {"reference": f"Device/{device_id}"},
        "partOf": [{"identifier": {"system": "urn:dicom:uid", "value": f"urn:oid:{study_uid}"}}],
    }
    events: list[dict[str, Any]] = []
    for n in range(EVENTS_PER_STUDY):
        ctdivol_mgy = max(0.5, rng.gauss(ctdi_mean, ctdi_mean * 0.25))
        length_mm = rng.uniform(100, 450)
        start = when + timedelta(seconds=40 * n)
        events.append(
            {
                **common,
                "id": f"ev-{study_no}-{n}",
                "identifier": [
                    {"system": "urn:dicom:uid", "value": f"urn:oid:{study_uid}.{n + 1}"}
                ],
                "code": {
                    "coding": [{"system": DCM, "code": "113852", "display": "Irradiation Event"}]
                },
                "effectiveDateTime": start.isoformat().replace("+00:00", "Z"),
                "method": {"text": f"{protocol} {n + 1}"},
                "component": [
                    _quantity("113830", ctdivol_mgy, "mGy"),
                    _quantity("113838", ctdivol_mgy * length_mm / 10, "mGy.cm"),
                    _quantity("113825", length_mm, "mm"),
                    _quantity("113733", rng.choice([80, 100, 120, 140]), "kV"),
                    _quantity("113734", rng.uniform(80, 400), "mA"),
                    _quantity("113824", rng.uniform(2, 12), "s"),
                    _quantity("113828", rng.choice([0.6, 0.8, 1.0, 1.2]), "{ratio}"),
                    {
                        "code": {"coding": [{"system": DCM, "code": "113835"}]},
                        "valueCodeableConcept": {
                            "coding": [
                                {"system": DCM, "code": "113690" if phantom_cm == 16 else "113691"}
                            ]
                        },
                    },
                ],
            }
        )
    dlp_total = sum(e["component"][1]["valueQuantity"]["value"] for e in events)
    summary = {
        **common,
        "id": f"rds-{study_no}",
        "code": {"coding": [{"system": LOINC, "code": "73569-6"}]},
        "effectiveDateTime": events[0]["effectiveDateTime"],
        "valueString": f"CT Dose Length Product Total = {dlp_total:.2f} mGy.cm",
        "hasMember": [{"reference": f"Observation/{e['id']}"} for e in events],
        "component": [
            {
                "code": {"coding": [{"system": DCM, "code": "121058"}]},
                "valueCodeableConcept": {
                    "coding": [{"system": "http://snomed.info/sct", "code": "77477000"}]
                },
            },
            _quantity("113813", dlp_total, "mGy.cm"),
            {
                "code": {"coding": [{"system": DCM, "code": "113812"}]},
                "valueInteger": EVENTS_PER_STUDY,
            },
        ],
    }
    return [summary, *events]


def observations(patients: int, total: int, seed: int = 1) -> Iterator[dict[str, Any]]:
    """`total` Observations spread over `patients` patients, studies of 1 + 3 Observations."""
    rng = random.Random(seed)
    per_study = EVENTS_PER_STUDY + 1
    for study_no in range(total // per_study):
        yield from study_observations(rng, f"pat-{rng.randrange(patients)}", study_no)
