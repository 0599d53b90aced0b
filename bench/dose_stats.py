"""Statistics over many irradiation events on the embedded store: one grouped table (CTDIvol
per device and standard procedure: n, mean, sd, min, percentiles, max, DRL comparison), timed
as GET /stats/dose computes it: from the columnar copy of the facts (server/stats/columns.py),
which the first query reads from SQLite and later queries only bring up to date. The floor:
numpy's median over the same values in memory.

N synthetic event rows (default 1,000,000) in the dose-facts table: 25 devices, the CT
procedures of mappings/classification/procedures.csv, two years of dates, lognormal CTDIvol.

    .venv/bin/python bench/dose_stats.py
    .venv/bin/python bench/dose_stats.py --events 100000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
import tracemalloc
import urllib.request
from dataclasses import replace
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np
from http_concurrency import KermaServer
from ingest import RESULTS
from machine import descendants, machine

from server.auth.users import add_user
from server.config import Settings
from server.dose.facts import DoseFact
from server.exports.rows import Export
from server.mappings import read_csv_rows, statistics_tables
from server.site import site_context
from server.stats.columns import FactColumns
from server.stats.service import Query, Statistics
from server.store.sqlite import SqliteStore

EVENTS_PER_STUDY = 5
PATIENTS = 100_000
START = 1_735_689_600.0  # 2025-01-01


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=RESULTS)
    parser.add_argument("--no-serve", dest="serve", action="store_false",
                        help="skip kerma serve's first query after ready and its memory")  # fmt: skip
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kerma-stats-bench-"))
    try:
        store = SqliteStore(work / "kerma.sqlite3")
        loaded = _load(store, args.events)
        settings = Settings(data_dir=work, drl_sets="UKHSA GB 2022")
        from server.site import build_service
        from server.site.tables import site_tables

        ctx = site_tables(build_service(store, settings), settings).context(site_context(settings))
        copies = {level: FactColumns(store, level) for level in ("event", "study")}
        stats = Statistics(store, ctx, statistics_tables(), copies.__getitem__)
        query = Query(
            "ctdivol_mgy", "event", ("device", "procedure"), START, START + 2 * 366 * 86400
        )
        started = time.perf_counter()
        stats.dose(query)
        first = time.perf_counter() - started
        with store.transaction() as tx:  # one more study arrives: the copy reads it alone
            tx.replace_facts("2.25.new", [DoseFact("event:new:1", "event", "2.25.new", "Observation/new", "CT",
                                                   device="Device/ct0", date=START + 5, ctdivol_mgy=12.0)])  # fmt: skip
        started = time.perf_counter()
        stats.dose(query)
        after_write = time.perf_counter() - started
        times, rows = [], []
        for _ in range(args.repeat):
            started = time.perf_counter()
            rows = stats.dose(query)
            times.append(time.perf_counter() - started)
        export = Export(store, b"bench", UTC, lambda ref: ref)
        tracemalloc.start()
        started = time.perf_counter()
        exported = sum(len(piece) for piece in export.csv(replace(query, level="event")))
        export_s = time.perf_counter() - started
        export_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        started = time.perf_counter()
        xlsx = export.xlsx(replace(query, level="event"))
        xlsx_s, xlsx_mb = time.perf_counter() - started, xlsx.stat().st_size / 1e6
        xlsx.unlink()
        values = np.array(
            store.fact_columns("event", ["ctdivol_mgy"], query.since, query.until)["ctdivol_mgy"]
        )
        floors = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            np.median(values)
            floors.append(time.perf_counter() - started)
        served = _served(work, store) if args.serve else {}
        store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(f"numpy {np.__version__}"),
        "events": args.events,
        "load_s": round(loaded, 1),
        "groups": len(rows),
        "first_query_s": round(first, 2),
        "after_one_write_s": round(after_write, 3),
        "table_s": round(min(times), 3),
        "numpy_median_s": round(min(floors), 4),
        "export_csv_s": round(export_s, 1),
        "export_csv_mb": round(exported / 1e6, 1),
        "export_peak_python_mb": round(export_peak / 1e6, 1),
        "export_xlsx_s": round(xlsx_s, 1),
        "export_xlsx_mb": round(xlsx_mb, 1),
        "served": served,
    }
    print(f"{results['date']}  {results['machine']}")
    print(f"{args.events} irradiation events in the dose facts (loaded in {results['load_s']} s)")
    print(f"  first query (reads the columnar copy from SQLite): {results['first_query_s']} s")
    print(
        f"  after one study was written (the copy reads it alone): {results['after_one_write_s']} s"
    )
    print(
        f"  CTDIvol per device and procedure, {len(rows)} groups: {results['table_s']} s (best of {args.repeat})"
    )
    print(
        f"  numpy median of the same {values.size} values in memory: {results['numpy_median_s']} s"
    )
    print(f"  pseudonymised CSV export of every event: {results['export_csv_s']} s, "
          f"{results['export_csv_mb']} MB, peak Python memory {results['export_peak_python_mb']} MB")  # fmt: skip
    print(
        f"  the same as XLSX (constant memory): {results['export_xlsx_s']} s, {results['export_xlsx_mb']} MB"
    )
    for start, found in served.items():
        print(f"  kerma serve, {start} start: the first statistics query answered "
              f"{found['first_query_after_ready_s']} s after ready; then, per process:")  # fmt: skip
        for process in found["processes"]:
            print(f"    {process['rss_mb']:>6} MB RSS {process['uss_mb']:>6} MB private "
                  f"{process['pss_mb']:>6} MB PSS  {process['name']}")  # fmt: skip
    args.dir.mkdir(parents=True, exist_ok=True)
    (args.dir / "statistics.json").write_text(json.dumps(results, indent=2))


def _served(work: Path, store: SqliteStore) -> dict[str, Any]:
    """`kerma serve` (one HTTP process per core) on the bench's store, started twice: cold (no
    copy of the facts on disk yet) and warm (the copy the first start left). Each time: from
    ready to the first statistics answer, then the memory of each process once a few more
    queries reached every HTTP process."""
    token = add_user(store, f"bench-{time.time_ns()}", "mpe")
    path = "/stats/dose?quantity=ctdivol_mgy&level=event&group=device,procedure&from=2025-01-01&to=2027-01-03"
    found = {}
    for start in ("cold", "warm"):
        server = KermaServer(work, os.cpu_count() or 1, quiet=False)
        with server as base:
            started = time.perf_counter()
            _get(f"{base}{path}", token)
            first = time.perf_counter() - started
            for _ in range(8):
                _get(f"{base}{path}", token)
            processes = [_memory(pid) for pid in descendants(server.process.pid)]
        found[start] = {"first_query_after_ready_s": round(first, 2), "processes": processes}
    return found


def _get(url: str, token: str) -> None:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=600) as answer:
        answer.read()


def _memory(pid: int) -> dict[str, Any]:
    """RSS, private (USS: what ending the process gives back) and PSS (shared pages divided
    among the processes that map them) from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":")
        fields[name] = int(value.split()[0]) / 1024
    command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return {"pid": pid, "name": command[:90], "rss_mb": round(fields["Rss"], 1),
            "pss_mb": round(fields["Pss"], 1),
            "uss_mb": round(fields["Private_Clean"] + fields["Private_Dirty"], 1)}  # fmt: skip


def _load(store: SqliteStore, events: int) -> float:
    """Synthetic facts, one transaction per 2,000 studies; the time it took."""
    rng = np.random.default_rng(2026)
    procedures = [
        r["name"] for r in read_csv_rows("classification/procedures.csv") if r["modality"] == "CT"
    ]
    studies = max(events // EVENTS_PER_STUDY, 1)
    started = time.perf_counter()
    batch: list[tuple[str, list[DoseFact]]] = []
    for n in range(studies):
        uid = f"2.25.{n}"
        device = f"Device/ct{rng.integers(25)}"
        procedure = procedures[rng.integers(len(procedures))]
        date = START + float(rng.uniform(0, 2 * 365 * 86400))
        ctdi = rng.lognormal(2.3, 0.4, EVENTS_PER_STUDY)
        patient = f"Patient/p{n % PATIENTS}"
        rows = [
            DoseFact(f"event:{uid}:{i}", "event", uid, f"Observation/{n}-{i}", "CT", device=device,
                     patient=patient, date=date + i, procedure=procedure, protocol=f"P{i}",
                     ctdivol_mgy=float(c))
            for i, c in enumerate(ctdi)
        ]  # fmt: skip
        rows.append(DoseFact(f"study:{uid}", "study", uid, f"Observation/{n}", "CT", device=device,
                             patient=patient, date=date, procedure=procedure,
                             dlp_mgy_cm=float(ctdi.sum()) * 40.0))  # fmt: skip
        batch.append((uid, rows))
        if len(batch) == 2000 or n == studies - 1:
            with store.transaction() as tx:
                for study_uid, facts in batch:
                    tx.replace_facts(study_uid, facts)
            batch = []
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
