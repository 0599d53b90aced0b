"""DICOM ingestion speed, end to end (read, map, store, dose facts) on the embedded SQLite store.

N copies (default 2,000) of the corpus's CT RDSRs, each with fresh Study/Series/SOP Instance
and Irradiation Event UIDs, are written once to bench/results/ingest-<N>/ and ingested into a
fresh store with `--workers` processes parsing (the same code `kerma ingest` runs). The floor is
a bare `pydicom.dcmread` plus a walk of every content item of the same files, in one process.
The 316-event fluoroscopy RDSR RF-Pat-Orientation-Modifier-Missing.dcm is also timed alone,
and the fluoroscopy RDSRs with beam geometry (a skin dose map each) one after the other. For
each run the time the store's write transaction is held (the lock other writers wait for) is
given beside the wall time.

    .venv/bin/python bench/ingest.py                  # 2,000 copies, 1 and 2 workers
    .venv/bin/python bench/ingest.py --copies 200
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
from machine import machine
from pydicom.uid import generate_uid

from server.config import Settings
from server.ingest import build_ingestor
from server.ingest.batch import ingest_files
from server.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parent
CORPUS = ROOT.parent / "tests" / "data" / "dicom" / "openrem"
RESULTS = ROOT / "results"
CT_RDSRS = sorted(p for p in CORPUS.glob("CT-*.dcm") if "RDSR" in p.name or "ESR" in p.name)
BIG_RF = CORPUS / "RF-Pat-Orientation-Modifier-Missing.dcm"
SKIN_MAPS = [CORPUS / f"RF-RDSR-{name}.dcm" for name in (
    "Siemens-Zee", "Siemens_Zee-HFS", "Siemens_Zee-FFS", "Canon-Alphenix-rotational", "GE",
    "Philips_Azurion")]  # fmt: skip
EVENT_UID = "113769"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--copies", type=int, default=2000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--dir", type=Path, default=RESULTS)
    args = parser.parse_args()
    folder = corpus_copies(args.dir / f"ingest-{args.copies}", args.copies)
    files = sorted(folder.glob("*.dcm"))
    results: dict[str, object] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(f"pydicom {pydicom.__version__}"),
        "files": len(files),
    }
    floor_s, items = _pydicom_floor(files)
    results["floor"] = {
        "seconds": round(floor_s, 2),
        "files_per_s": round(len(files) / floor_s, 1),
        "content_items": items,
    }
    for workers in args.workers:
        seconds, events, locked = _ingest(files, workers)
        results[f"workers_{workers}"] = {
            "seconds": round(seconds, 2),
            "files_per_s": round(len(files) / seconds, 1),
            "events_per_s": round(events / seconds, 1),
            "x_floor": round(seconds / floor_s, 2),
            "write_lock_s": round(locked, 2),
        }
    big_floor, big_items = _pydicom_floor([BIG_RF])
    big_ingest, big_events, big_locked = _ingest([BIG_RF], 1)
    results["rf_316_events"] = {
        "ingest_s": round(big_ingest, 2),
        "pydicom_s": round(big_floor, 2),
        "x_pydicom": round(big_ingest / big_floor, 2),
        "events": big_events,
        "content_items": big_items,
        "write_lock_s": round(big_locked, 2),
    }
    maps_ingest, _, maps_locked = _ingest(SKIN_MAPS, 1)
    results["skin_maps"] = {"files": len(SKIN_MAPS), "ingest_s": round(maps_ingest, 2),
                            "write_lock_s": round(maps_locked, 2)}  # fmt: skip
    _print(results)
    (args.dir / "ingest.json").write_text(json.dumps(results, indent=2))


def corpus_copies(folder: Path, n: int) -> Path:
    """N re-identified copies of the CT RDSRs (written once, then reused)."""
    marker = folder / "complete"
    if marker.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    sources = [pydicom.dcmread(p) for p in CT_RDSRS]
    for i in range(n):
        ds = sources[i % len(sources)].copy()
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = (
            generate_uid(),
            generate_uid(),
            generate_uid(),
        )
        ds.PatientID = f"BENCH{i % 500:04d}"
        _new_event_uids(ds)
        ds.save_as(folder / f"{i:06d}.dcm", enforce_file_format=True)
    marker.write_text(str(n))
    return folder


def _new_event_uids(ds: pydicom.Dataset) -> None:
    for item in ds.get("ContentSequence", []):
        names = item.get("ConceptNameCodeSequence")
        if names and names[0].CodeValue == EVENT_UID and item.ValueType == "UIDREF":
            item.UID = generate_uid()
        _new_event_uids(item)


def _pydicom_floor(files: list[Path]) -> tuple[float, int]:
    started = time.perf_counter()
    items = 0
    for path in files:
        items += _walk(pydicom.dcmread(path).get("ContentSequence", []))
    return time.perf_counter() - started, items


def _walk(items: pydicom.Sequence) -> int:
    """Touch what a dose reader reads of every content item."""
    count = 0
    for item in items:
        count += 1
        names = item.get("ConceptNameCodeSequence")
        if names:
            _ = (names[0].CodeValue, names[0].CodingSchemeDesignator)
        _ = (item.get("ValueType"), item.get("RelationshipType"))
        measured = item.get("MeasuredValueSequence")
        if measured:
            _ = (measured[0].NumericValue, measured[0].MeasurementUnitsCodeSequence[0].CodeValue)
        for keyword in ("ConceptCodeSequence", "TextValue", "UID", "DateTime"):
            _ = item.get(keyword)
        count += _walk(item.get("ContentSequence", []))
    return count


def _ingest(files: list[Path], workers: int) -> tuple[float, int, float]:
    """Wall seconds, events stored, and seconds the write transaction was held."""
    data_dir = Path(tempfile.mkdtemp(prefix="kerma-ingest-bench-"))
    try:
        settings = Settings(data_dir=data_dir)
        store = SqliteStore(settings.sqlite_path)
        locked = _time_transactions(store)
        ingestor = build_ingestor(store, settings)
        events = 0

        def count(path: Path, result: object) -> None:
            nonlocal events
            assert result.status == "ingested", (path, result)  # type: ignore[attr-defined]
            events += result.events_added  # type: ignore[attr-defined]

        started = time.perf_counter()
        ingest_files(ingestor, files, workers, count)
        seconds = time.perf_counter() - started
        store.close()
        return seconds, events, locked[0]
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _time_transactions(store: SqliteStore) -> list[float]:
    """Wrap the store's write transactions to add up how long they are held."""
    held = [0.0]
    opened = store.transaction

    @contextlib.contextmanager
    def timed() -> Iterator[Any]:
        started = time.perf_counter()
        try:
            with opened() as tx:
                yield tx
        finally:
            held[0] += time.perf_counter() - started

    store.transaction = timed  # type: ignore[method-assign]
    return held


def _print(r: dict[str, object]) -> None:
    print(f"{r['date']}  {r['machine']}")
    floor = r["floor"]
    print(
        f"{r['files']} CT RDSRs; pydicom floor {floor['seconds']} s = {floor['files_per_s']} files/s ({floor['content_items']} content items)"
    )  # type: ignore[index]
    for key, value in r.items():
        if key.startswith("workers_"):
            w = value  # type: ignore[assignment]
            print(
                f"  {key.replace('_', ' ')}: {w['files_per_s']} files/s, {w['events_per_s']} events/s, {w['x_floor']}x the floor, write lock held {w['write_lock_s']} of {w['seconds']} s"
            )  # type: ignore[index]
    big = r["rf_316_events"]
    print(
        f"RF 316-event RDSR: ingest {big['ingest_s']} s, pydicom read {big['pydicom_s']} s ({big['x_pydicom']}x), write lock held {big['write_lock_s']} s"
    )  # type: ignore[index]
    maps = r["skin_maps"]
    print(
        f"{maps['files']} fluoroscopy RDSRs with skin dose maps: ingest {maps['ingest_s']} s, write lock held {maps['write_lock_s']} s"
    )  # type: ignore[index]


if __name__ == "__main__":
    main()
