#!/usr/bin/env python3
"""Build mappings/drl/national.csv from the research team's reference table
(../shared/data/reference/drl_national.csv, sources and caveats in its SOURCES.md).

Each reference row is kept, with what Kerma needs to compare against it worked out once and
written down: the DICOM code and level of the quantity (per irradiation event or series, per
examination), the UCUM unit, the age or weight band as numbers, whether the level is a DRL
(VGD optimisation targets are not), whether it is in force, and whether it was read in the
authority's own text. Run it again when the reference table changes:

    python3 scripts/drl_table.py ../shared/data/reference/drl_national.csv [OUT.csv]
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "mappings" / "drl" / "national.csv"
COLUMNS = [
    "set", "authority", "country", "year", "modality", "population", "age_min_years",
    "age_max_years", "weight_min_kg", "weight_max_kg", "examination", "clinical_indication",
    "quantity_code", "quantity", "per", "value", "unit", "phantom", "kind", "current", "verified",
    "usable", "verification", "source", "notes",
]  # fmt: skip
UNITS = {"mGy·cm": "mGy.cm", "mGy": "mGy", "cGy·cm²": "cGy.cm2", "mGy·cm²": "mGy.cm2"}


def main(reference: Path, out: Path) -> None:
    with reference.open(encoding="utf-8") as f:
        rows = [_row(r) for r in csv.DictReader(f)]
    with out.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {out} ({len(rows)} rows, {sum(r['usable'] == 'yes' for r in rows)} usable)")


def _row(r: dict[str, str]) -> dict[str, str]:
    code, quantity, per = _quantity(r)
    ages, weights = _band(r["age_group"])
    unit = UNITS.get(r["unit"], "")
    kind = "VGD" if r["level_type"].startswith("VGD") else "DRL"
    current = "no" if r["status"].startswith("superseded") else "yes"
    verified = "yes" if r["verification"].startswith("primary_text") else "no"
    usable = "yes" if unit and code and kind == "DRL" else "no"
    return {
        "set": f"{r['authority'].split(' (')[0]} {r['country']} {r['year']}",
        "authority": r["authority"],
        "country": r["country"],
        "year": r["year"],
        "modality": r["modality"],
        "population": "paediatric" if r["age_group"].startswith("paediatric") else "adult",
        "age_min_years": ages[0],
        "age_max_years": ages[1],
        "weight_min_kg": weights[0],
        "weight_max_kg": weights[1],
        "examination": r["examination"],
        "clinical_indication": r["clinical_indication"],
        "quantity_code": code,
        "quantity": quantity,
        "per": per,
        "value": r["value"].replace(",", "."),
        "unit": unit,
        "phantom": r["phantom"].replace(" ", ""),
        "kind": kind,
        "current": current,
        "verified": verified,
        "usable": usable,
        "verification": r["verification"],
        "source": r["source"],
        "notes": r["notes"],
    }


def _quantity(r: dict[str, str]) -> tuple[str, str, str]:
    """(DICOM code, name, level): which value of a dose report the level is compared with."""
    q, modality, notes = r["quantity"], r["modality"], r["notes"].lower()
    if q == "CTDIvol":
        return "113830", "Mean CTDIvol", "event"
    if q == "DLP":
        if "per scan series" in notes:  # BfS 2010
            return "113838", "DLP", "event"
        return "113813", "CT Dose Length Product Total", "examination"
    if q.startswith("Pka"):
        if modality in ("DX", "DENTAL") or "per single projection" in notes:
            return "122130", "Dose Area Product", "event"
        return "113722", "Dose Area Product Total", "examination"
    if q == "AGD" and r["unit"].startswith("mGy"):
        return "111637", "Accumulated Average Glandular Dose", "examination"
    return "", q, ""  # not comparable as printed (e.g. an AGD in mSv)


def _band(group: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """Age band in years or weight band in kg, from "paediatric, age 1-5 years", "adult (15+
    years)", "paediatric, weight 5-15 kg", "paediatric, age 0-3 months"."""
    ages, weights = ("", ""), ("", "")
    if m := re.search(r"weight (\d+)-(\d+) kg", group):
        weights = (m.group(1), m.group(2))
    elif m := re.search(r"age (\d+)-(\d+) months", group):
        ages = (_years(int(m.group(1)) / 12), _years(int(m.group(2)) / 12))
    elif m := re.search(r"age (\d+)-(\d+) years?", group):
        ages = (m.group(1), m.group(2))
    elif m := re.search(r"(\d+)\+ years|age >(\d+) years", group):
        ages = (m.group(1) or m.group(2), "")
    elif m := re.search(r"weight <(\d+) kg", group):
        weights = ("0", m.group(1))
    elif group.startswith("adult"):
        ages = ("18", "")
    return ages, weights


def _years(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else OUT)
