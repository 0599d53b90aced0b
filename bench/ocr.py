"""OCR of CT dose screens: per-field accuracy on rendered pages (bench/dose_pages.py).

Every CT RDSR of the corpus, rendered in the GE, Siemens, Philips and Toshiba layouts at
512x512 and 1024x1024, clean and degraded (JPEG quality 35, low contrast with blur, shifted
and turned 0.8 degrees), is read by the code ingestion runs (server/dicom/ocr.py). Each numeric
field printed on a page (kV, mA, CTDIvol, DLP per series, the total DLP) is compared with what
was read. Counted: fields exact; wrong fields flagged at that field (a finding names it, or
names the rows as a whole: the readings disagree on how many there are); pages left for
review (any doubt: status preliminary, no dose facts); and wrong fields on
pages stored as final, the ones that would reach the statistics unnoticed.

    .venv/bin/python bench/ocr.py                       # all 352 pages, 2 processes
    .venv/bin/python bench/ocr.py --exams 2 --sizes 512 --degradations clean
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import dose_pages
import pytesseract
from machine import machine

from server.dicom.read import Read, read_dicom
from server.mappings import unit_table

RESULTS = Path(__file__).resolve().parent / "results"
_FIELDS = {"ctdivol_mgy": "ctdivol", "dlp_mgy_cm": "dlp", "kvp_kv": "kvp", "tube_current_ma": "ma"}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--exams", type=int, default=0, help="only the first N exams (0: all)")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(dose_pages.SIZES))
    parser.add_argument("--degradations", nargs="+", default=list(dose_pages.DEGRADATIONS))
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--dir", type=Path, default=RESULTS)
    args = parser.parse_args()
    names = [e.name for e in dose_pages.exams()][: args.exams or None]
    jobs = [
        (name, layout.vendor, size, degradation)
        for name in names
        for layout in dose_pages.LAYOUTS
        for size in args.sizes
        for degradation in args.degradations
    ]
    started = time.perf_counter()
    with ProcessPoolExecutor(args.processes) as pool:
        pages = list(pool.map(_read_page, jobs))
    seconds = time.perf_counter() - started
    results = _tally(pages, args.degradations)
    results["pages"] = len(pages)
    results["seconds_per_page"] = round(seconds * args.processes / len(pages), 2)
    results["date"] = time.strftime("%Y-%m-%d")
    results["machine"] = machine(f"Tesseract {pytesseract.get_tesseract_version()}")
    _print(results, args.degradations)
    args.dir.mkdir(parents=True, exist_ok=True)
    (args.dir / "ocr.json").write_text(json.dumps(results, indent=2))


def _read_page(job: tuple[str, str, int, str]) -> dict[str, object]:
    name, vendor, size, degradation = job
    exam = next(e for e in dose_pages.exams() if e.name == name)
    layout = next(lay for lay in dose_pages.LAYOUTS if lay.vendor == vendor)
    page = dose_pages.page(exam, layout, size, degradation)
    outcome = read_dicom(dose_pages.to_bytes(page.dataset), unit_table())
    read: dict[str, float | None] = {}
    flagged: set[str] = set()
    review = True
    if isinstance(outcome, Read):
        report = outcome.report
        review = report.needs_review
        read["total_dlp"] = report.ct_totals.dlp_total_mgy_cm if report.ct_totals else None
        for i, event in enumerate(report.ct_events):
            read[f"rows[{i}].ctdivol"], read[f"rows[{i}].dlp"] = event.ctdivol_mgy, event.dlp_mgy_cm
            if event.sources:
                read[f"rows[{i}].kvp"] = event.sources[0].kvp_kv
                read[f"rows[{i}].ma"] = event.sources[0].tube_current_ma
        flagged = {_truth_key(f.path) for f in report.findings}
        if any(f.path == "ct_events" for f in report.findings):  # the rows themselves in doubt
            flagged |= {key for key in page.truth if key.startswith("rows[")}
    fields = [(key, read.get(key) == value, key in flagged) for key, value in page.truth.items()]
    return {"vendor": vendor, "degradation": degradation, "fields": fields, "review": review}


def _truth_key(path: str) -> str:
    if path == "ct_events":
        return path
    if path.startswith("ct_totals."):
        return "total_dlp"
    index, _, name = path.removeprefix("ct_events[").partition("].")
    return f"rows[{index}].{_FIELDS.get(name, name)}"


def _tally(pages: list[dict[str, object]], degradations: list[str]) -> dict[str, object]:
    counts: Counter[tuple[str, str, str]] = Counter()
    for page in pages:
        for who in (page["vendor"], "all"):
            key = (str(who), str(page["degradation"]))
            counts[(*key, "pages")] += 1
            counts[(*key, "review")] += bool(page["review"])
            for _, exact, flagged in page["fields"]:  # type: ignore[attr-defined]
                counts[(*key, "fields")] += 1
                counts[(*key, "exact")] += exact
                counts[(*key, "wrong")] += not exact
                counts[(*key, "wrong_flagged")] += (not exact) and flagged
                # the dangerous ones: wrong, and on a page stored as final (a fact for statistics)
                counts[(*key, "wrong_as_fact")] += (not exact) and not page["review"]
    table: dict[str, object] = {}
    for vendor in [lay.vendor for lay in dose_pages.LAYOUTS] + ["all"]:
        for degradation in degradations:
            c = {k[2]: v for k, v in counts.items() if k[:2] == (vendor, degradation)}
            if c.get("fields"):
                c["accuracy"] = round(c["exact"] / c["fields"], 4)
                table[f"{vendor}/{degradation}"] = c
    return {"by_vendor_and_degradation": table}


def _print(results: dict[str, object], degradations: list[str]) -> None:
    print(f"{results['date']}  {results['machine']}")
    print(f"{results['pages']} pages, {results['seconds_per_page']} s per page")
    print(
        f"{'layout/degradation':24}{'fields':>8}{'exact':>8}{'accuracy':>10}{'wrong':>7}{'flagged':>9}{'as fact':>9}{'review':>8}"
    )
    for key, c in results["by_vendor_and_degradation"].items():  # type: ignore[attr-defined]
        print(
            f"{key:24}{c['fields']:>8}{c['exact']:>8}{c['accuracy']:>10.2%}{c.get('wrong', 0):>7}"
            f"{c.get('wrong_flagged', 0):>9}{c.get('wrong_as_fact', 0):>9}{c.get('review', 0):>5}/{c['pages']}"
        )


if __name__ == "__main__":
    main()
