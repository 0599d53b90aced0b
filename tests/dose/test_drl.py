"""The shipped DRL table: built from the reference table, values and levels as the
authorities print them, in Kerma's units."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from server.dose.drl import DoseLevel, levels_from_rows
from server.mappings import read_csv_rows, unit_table

ROOT = Path(__file__).parent.parent.parent
REFERENCE = ROOT / "tests" / "data" / "reference" / "drl_national.csv"


@pytest.fixture(scope="module")
def levels() -> list[DoseLevel]:
    return levels_from_rows(read_csv_rows("drl/national.csv"), unit_table())


def _one(levels: list[DoseLevel], **match: object) -> DoseLevel:
    [found] = [lv for lv in levels if all(getattr(lv, k) == v for k, v in match.items())]
    return found


def test_the_shipped_table_is_what_the_script_builds(tmp_path: Path) -> None:
    built = tmp_path / "national.csv"
    script = ROOT / "scripts" / "drl_table.py"
    subprocess.run([sys.executable, str(script), str(REFERENCE), str(built)], check=True)
    shipped = ROOT / "mappings" / "drl" / "national.csv"
    assert built.read_text(encoding="utf-8") == shipped.read_text(encoding="utf-8")


def test_uk_ct_levels(levels: list[DoseLevel]) -> None:
    stroke = dict(set="UKHSA GB 2022", examination="Head", clinical_indication="Acute stroke")
    ctdi = _one(levels, quantity_code="113830", **stroke)
    assert (ctdi.value, ctdi.unit, ctdi.per, ctdi.kind) == (47.0, "mGy", "event", "DRL")
    dlp = _one(levels, quantity_code="113813", **stroke)
    assert (dlp.value, dlp.unit, dlp.per) == (790.0, "mGy.cm", "examination")
    assert ctdi.current and ctdi.verified and ctdi.age_min_years == 18


def test_german_dap_in_cgy_cm2_becomes_gy_m2(levels: list[DoseLevel]) -> None:
    chest = [
        lv for lv in levels if lv.set == "BfS DE 2022" and lv.examination.startswith("Thorax p")
    ]
    assert chest and all(lv.unit == "Gy.m2" and lv.per == "event" for lv in chest)
    assert chest[0].value == pytest.approx(12e-6)  # 12 cGy·cm² (2022; it was 16 in 2010)
    old = [lv for lv in levels if lv.set == "BfS DE 2010" and lv.examination.startswith("Thorax p")]
    assert old and old[0].value == pytest.approx(16e-6) and not old[0].current


def test_what_is_not_a_drl_or_not_verified_is_marked(levels: list[DoseLevel]) -> None:
    french = [lv for lv in levels if lv.set == "ASN FR 2019"]
    assert {lv.kind for lv in french} == {"DRL", "VGD"}  # VGD: an optimisation target
    euclid = [lv for lv in levels if lv.set == "European Commission / ESR EU 2021"]
    assert euclid and not any(lv.verified for lv in euclid)  # typed from a transcription
    # the BfS mammography AGD printed in mSv is not comparable as printed: not a level
    assert not [lv for lv in levels if lv.modality == "MG"]
    assert len(levels) == 224 and len({lv.key for lv in levels}) == 224


def test_paediatric_bands(levels: list[DoseLevel]) -> None:
    by_weight = [lv for lv in levels if lv.weight_max_kg == 15 and lv.weight_min_kg == 5]
    assert by_weight and all(lv.population == "paediatric" for lv in by_weight)
    infants = [lv for lv in levels if lv.age_max_years == 0.25]
    assert infants and infants[0].age_min_years == 0


def test_applicable_levels_by_procedure_age_and_force(levels: list[DoseLevel]) -> None:
    from server.dose.drl import Value, applicable, exceedances, procedure_map

    procedures = procedure_map(
        [{"set": "UKHSA GB 2022", "examination": "Chest", "procedures": "RPID16 RPID18"},
         {"set": "European Commission EU 2018", "examination": "Chest", "procedures": "RPID16"}]
    )  # fmt: skip
    adult = applicable(levels, procedures, "RPID16", 52.0)
    assert {(lv.set, lv.quantity_code, lv.value) for lv in adult} == {
        ("UKHSA GB 2022", "113830", 8.5),
        ("UKHSA GB 2022", "113813", 290.0),
    }
    child = applicable(levels, procedures, "RPID16", 7.0, weight_kg=20.0)
    assert {(lv.quantity_code, lv.value) for lv in child} == {("113830", 2.7), ("113813", 70.0)}
    assert applicable(levels, procedures, "RPID16", 7.0) == []  # by weight band: weight needed
    heavy_adult = applicable(levels, procedures, "RPID16", 52.0, weight_kg=70.0)
    assert {lv.set for lv in heavy_adult} == {"UKHSA GB 2022"}
    assert applicable(levels, procedures, "RPID22", 52.0) == []  # no level for that procedure
    values = [Value("113830", "event", 9.0, "1.2.3"), Value("113830", "event", 8.5, "1.2.4"),
              Value("113813", "examination", 250.0)]  # fmt: skip
    [over] = exceedances(adult, values)
    assert over.value.event_uid == "1.2.3" and over.ratio == pytest.approx(9.0 / 8.5)
