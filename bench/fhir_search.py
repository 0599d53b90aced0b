"""FHIR search and transaction speed on the embedded SQLite store.

Loads N realistic dose Observations (bench/dose_data.py) once into a cached database, then
measures through the whole HTTP stack (Flask WSGI in-process: auth, audit, search, bundle):
  (a) GET Observation?patient=X
  (b) GET Observation?code=<event>&date=ge<month>&date=lt<next month>&_count=100
  (c) POST a transaction Bundle of 100 Observations (validated, indexed, committed)
and, as the floor, the raw SQLite time of the index query behind (a) and (b).

    .venv/bin/python bench/fhir_search.py                      # 1,000,000 Observations
    .venv/bin/python bench/fhir_search.py --observations 20000 --patients 1000 --queries 50
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dose_data
from machine import machine

from server.app import create_app
from server.auth.users import add_user
from server.config import Settings
from server.fhir.values import date_range
from server.site import build_service
from server.store.sqlite import SqliteStore, decompress

RESULTS = Path(__file__).resolve().parent / "results"
EVENT = f"{dose_data.DCM}|113852"
CHUNK = 5_000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--observations", type=int, default=1_000_000)
    parser.add_argument("--patients", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=200, help="timed repetitions of (a) and (b)")
    parser.add_argument("--transactions", type=int, default=30, help="timed transactions of 100")
    parser.add_argument("--dir", type=Path, default=RESULTS, help="where the cached database lives")
    args = parser.parse_args()

    data_dir = args.dir / f"obs{args.observations}-pat{args.patients}"
    store = SqliteStore(data_dir / "kerma.sqlite3")
    load_seconds = _load(store, data_dir, args.observations, args.patients)
    token = add_user(store, f"bench-{time.time_ns()}", "mpe")
    client = create_app(Settings(data_dir=data_dir), store).test_client()
    headers = {"Authorization": f"Bearer {token}"}
    rng = random.Random(7)

    def by_patient() -> None:
        r = client.get(
            f"/fhir/Observation?patient=pat-{rng.randrange(args.patients)}", headers=headers
        )
        assert r.status_code == 200, r.get_data(as_text=True)

    def by_code_and_month() -> None:
        low, high = _month(rng)
        url = f"/fhir/Observation?code={EVENT}&date=ge{low}&date=lt{high}&_count=100"
        r = client.get(url, headers=headers)
        assert r.status_code == 200, r.get_data(as_text=True)[:300]
        bundle = r.get_json()
        assert len(bundle.get("entry", [])) == min(100, bundle["total"])

    conn = sqlite3.connect(store.path)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": machine(f"SQLite {sqlite3.sqlite_version}"),
        "observations": args.observations,
        "patients": args.patients,
        "load_seconds": round(load_seconds, 1) if load_seconds else None,
        "a_patient": _timed(by_patient, args.queries),
        "b_code_month": _timed(by_code_and_month, args.queries),
        "a_floor": _timed(lambda: _floor_patient(conn, rng, args.patients), args.queries),
        "b_floor": _timed(lambda: _floor_code_month(conn, rng), args.queries),
    }
    results["c_transaction"] = _transactions(client, headers, args.transactions, args.patients)
    _print(results)
    (args.dir / "fhir_search.json").write_text(json.dumps(results, indent=2))


def _load(store: SqliteStore, data_dir: Path, observations: int, patients: int) -> float | None:
    """Load once; later runs reuse the database (delete bench/results to reload)."""
    marker = data_dir / "loaded.json"
    if marker.exists():
        return None
    service = build_service(store)
    started = time.perf_counter()
    resources = [dose_data.device(i) for i in range(dose_data.DEVICES)]
    resources += [dose_data.patient(i) for i in range(patients)]
    _commit(service, resources)
    chunk: list[dict[str, Any]] = []
    done = 0
    for obs in dose_data.observations(patients, observations):
        chunk.append(obs)
        if len(chunk) == CHUNK:
            _commit(service, chunk)
            done += len(chunk)
            chunk = []
            rate = done / (time.perf_counter() - started)
            print(
                f"\rloaded {done:,} Observations ({rate:,.0f}/s)",
                end="",
                file=sys.stderr,
                flush=True,
            )
    _commit(service, chunk)
    store._conn().execute("ANALYZE")
    seconds = time.perf_counter() - started
    print(file=sys.stderr)
    marker.write_text(
        json.dumps({"observations": observations, "patients": patients, "seconds": seconds})
    )
    return seconds


def _commit(service: Any, resources: list[dict[str, Any]]) -> None:
    """Generated resources are trusted (the generator's shape is validated in the smoke test)."""
    with service.store.transaction() as tx:
        for r in resources:
            service.update_in(tx, r["resourceType"], r["id"], r, trusted=True)


def _month(rng: random.Random) -> tuple[str, str]:
    year, month = 2023 + rng.randrange(3), 1 + rng.randrange(12)
    following = (year + month // 12, month % 12 + 1)
    return f"{year}-{month:02d}-01", f"{following[0]}-{following[1]:02d}-01"


def _floor_patient(conn: sqlite3.Connection, rng: random.Random, patients: int) -> None:
    rows = conn.execute(
        "SELECT v.body FROM ix_reference AS x JOIN resource AS r ON r.pk = x.pk "
        "JOIN resource_version AS v ON v.seq = r.current_seq "
        "WHERE x.param = (SELECT id FROM search_param WHERE rtype = 'Observation' AND name = 'patient') "
        "AND x.target = ?",
        (f"Patient/pat-{rng.randrange(patients)}",),
    ).fetchall()
    [decompress(body) for (body,) in rows]


def _floor_code_month(conn: sqlite3.Connection, rng: random.Random) -> None:
    """The best plan by hand: one range of the token index (its rows carry the date)."""
    low, high = (date_range(d)[0] for d in _month(rng))
    code_param = conn.execute(
        "SELECT id FROM search_param WHERE rtype = 'Observation' AND name = 'code'"
    ).fetchone()[0]
    where = "FROM ix_token WHERE param = ? AND code = '113852' AND dlo >= ? AND dlo < ?"
    pks = [pk for (pk,) in conn.execute(f"SELECT pk {where} ORDER BY pk", (code_param, low, high))]
    page = pks[:100]
    marks = ",".join("?" * len(page))
    rows = conn.execute(
        f"SELECT v.body FROM resource AS r JOIN resource_version AS v ON v.seq = r.current_seq "
        f"WHERE r.pk IN ({marks})",
        page,
    ).fetchall()
    [decompress(body) for (body,) in rows]


def _transactions(
    client: Any, headers: dict[str, str], count: int, patients: int
) -> dict[str, float]:
    rng = random.Random(11)
    seconds: list[float] = []
    for t in range(count):
        resources = [
            obs
            for n in range(25)
            for obs in dose_data.study_observations(
                rng, f"pat-{rng.randrange(patients)}", 10_000_000 + t * 100 + n
            )
        ]
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": {k: v for k, v in r.items() if k not in ("id", "hasMember")},
                    "request": {"method": "POST", "url": "Observation"},
                }
                for r in resources
            ],
        }
        body = orjson.dumps(bundle)
        started = time.perf_counter()
        r = client.post(
            "/fhir",
            data=body,
            headers={
                **headers,
                "Content-Type": "application/fhir+json",
                "Prefer": "return=minimal",
            },
        )
        seconds.append(time.perf_counter() - started)
        assert r.status_code == 200, r.get_data(as_text=True)[:300]
    per_bundle = statistics.median(seconds)
    return {"p50_ms": round(per_bundle * 1000, 1), "resources_per_s": round(100 / per_bundle)}


def _timed(fn: Callable[[], None], n: int) -> dict[str, float]:
    for _ in range(min(10, n)):
        fn()  # warm the page cache and the statement cache
    times = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "p50_ms": round(times[len(times) // 2], 2),
        "p95_ms": round(times[int(len(times) * 0.95) - 1], 2),
    }


def _print(r: dict[str, Any]) -> None:
    print(f"{r['date']}  {r['machine']}")
    print(
        f"{r['observations']:,} Observations, {r['patients']:,} patients; load {r['load_seconds']} s (cached if None)"
    )
    for key, label, target in [
        ("a_patient", "(a) Observation?patient=X", 20),
        ("b_code_month", "(b) code + date month, _count=100", 50),
    ]:
        floor = r[key[0] + "_floor"]
        ratio = r[key]["p95_ms"] / floor["p95_ms"] if floor["p95_ms"] else float("nan")
        print(
            f"{label:38} p50 {r[key]['p50_ms']:7.2f} ms  p95 {r[key]['p95_ms']:7.2f} ms  (target p95 <= {target} ms)  "
            f"raw SQLite p95 {floor['p95_ms']:.2f} ms, ratio {ratio:.1f}x"
        )
    c = r["c_transaction"]
    print(
        f"{'(c) transaction of 100 Observations':38} p50 {c['p50_ms']:7.1f} ms  {c['resources_per_s']:,} resources/s (target >= 2,000)"
    )


if __name__ == "__main__":
    main()
