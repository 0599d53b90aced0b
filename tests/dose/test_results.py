"""The dose sentence and coded values for the RIS, from dose facts (mappings/hl7/dose_results.csv)."""

from __future__ import annotations

from server.dose.facts import DoseFact
from server.dose.results import dose_result
from server.mappings import dose_result_items


def _fact(level: str, **values: object) -> DoseFact:
    return DoseFact(
        key=f"{level}:1",
        level=level,
        study_uid="1",
        resource="Observation/1",  # type: ignore[arg-type]
        modality=str(values.pop("modality", "DX")),
        **values,
    )  # type: ignore[arg-type]


def test_one_radiograph() -> None:
    study = _fact("study", procedure="Chest PA", events=1, dap_gy_m2=0.00012)
    result = dose_result(study, [_fact("event", dap_gy_m2=0.00012)], dose_result_items())
    assert result.text == "Chest PA: 1 irradiation event, DAP 1.20 Gy·cm²"
    assert [(v.item.code, v.value, v.item.unit, v.sub_id) for v in result.values] == [
        ("113722", 1.2, "Gy.cm2", "")
    ]


def test_mammography_without_a_procedure_names_the_modality() -> None:
    study = _fact("study", modality="MG", events=4, agd_mgy=5.123)
    result = dose_result(study, [], dose_result_items())
    assert result.text == "MG: 4 irradiation events, AGD 5.12 mGy"
