"""Skin dose maps: Kerma's against OpenREM's openSkin results for the same RDSRs (peak skin
dose, peak cell, Pearson correlation of the maps cell by cell), and how long a map takes.

The reference maps are the ones OpenREM's tests expect (tests/data/dicom/openrem/
skin_maps_expected/): the Siemens Zee and Canon Alphenix files on openSkin's develop phantom
(head and torso), the Zee HFS and FFS files on the headless phantom of branch
issue837addknownskinmaps (compared with our torso rows).

    .venv/bin/python bench/skin_dose_agreement.py
    .venv/bin/python bench/skin_dose_agreement.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from machine import machine

from server.dicom.read import Read, read_dicom
from server.dose.model import DoseReport
from server.dose.skin import agreement, skin_dose_map
from server.mappings import skin_dose_factors, unit_table

DATA = Path(__file__).resolve().parent.parent / "tests/data/dicom/openrem"
RESULTS = Path(__file__).resolve().parent / "results"
# (RDSR, openSkin map, the reference phantom has a head)
CASES = [
    ("RF-RDSR-Siemens-Zee.dcm", "ZEE_SKIN_MAP", True),
    ("RF-RDSR-Siemens_Zee-HFS.dcm", "SKIN_MAP_HFS", False),
    ("RF-RDSR-Siemens_Zee-FFS.dcm", "SKIN_MAP_FFS", False),
    ("RF-RDSR-Canon-Alphenix-rotational.dcm", "ALPHENIX_SKIN_MAP", True),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per file")
    parser.add_argument("--dir", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = [_case(name, reference, head, args.repeats) for name, reference, head in CASES]
    alphenix = _report(CASES[-1][0])
    fluoro = replace(alphenix, projection_events=alphenix.projection_events[:-1])
    rows.append(
        _row("Alphenix, fluoroscopy events only", fluoro, "ALPHENIX_SKIN_MAP", True, args.repeats)
    )
    where = machine()
    print(f"{time.strftime('%Y-%m-%d')}  {where}")
    print(
        f"{'file':38} {'ours mGy':>9} {'openSkin':>9} {'ratio':>6} {'cells':>6} {'corr':>6} {'ms':>7}"
    )
    for r in rows:
        print(f"{r['case']:38} {r['peak_mgy']:9.3f} {r['openskin_peak_mgy']:9.3f} {r['ratio']:6.3f} "
              f"{r['peak_distance_cells']:6.1f} {r['correlation']:6.3f} {r['ms_per_map']:7.1f}")  # fmt: skip
    args.dir.mkdir(parents=True, exist_ok=True)
    out = {"date": time.strftime("%Y-%m-%d"), "machine": where, "rows": rows}
    (args.dir / "skin_dose_agreement.json").write_text(json.dumps(out, indent=2))


def _report(name: str) -> DoseReport:
    outcome = read_dicom(DATA / name, unit_table())
    assert isinstance(outcome, Read), outcome
    return outcome.report


def _case(name: str, reference: str, head: bool, repeats: int) -> dict[str, object]:
    return _row(name, _report(name), reference, head, repeats)


def _row(
    case: str, report: DoseReport, reference: str, head: bool, repeats: int
) -> dict[str, object]:
    factors = skin_dose_factors()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        found = skin_dose_map(report, factors)
        seconds.append(time.perf_counter() - start)
    ours = found.dose_gy if head else found.dose_gy[found.phantom.head_length_cm :]
    values = json.loads((DATA / "skin_maps_expected" / f"{reference}.json").read_text())["values"]
    theirs = np.array(values, dtype=float).reshape(-1, ours.shape[1])
    a = agreement(ours, theirs)
    return {
        "case": case,
        "peak_mgy": a.peak_gy * 1000,
        "openskin_peak_mgy": a.other_peak_gy * 1000,
        "ratio": a.peak_gy / a.other_peak_gy if a.other_peak_gy else math.nan,
        "peak_distance_cells": a.peak_distance_cells,
        "correlation": a.correlation,
        "ms_per_map": statistics.median(seconds) * 1000,
    }


if __name__ == "__main__":
    main()
