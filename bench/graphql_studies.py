"""GraphQL: one query for a page of CT studies with their patients and irradiation events,
through the whole HTTP stack (Flask in-process: auth, schema, DataLoaders, audit), beside
the REST search that returns the same resources (`_include` the patients, `_revinclude` the
events). Counts the store queries the GraphQL query issues (no N+1: a constant).

Studies are dose_data's CT studies (1 summary + 3 events), each with an ImagingStudy its
events point at (partOf), on the embedded SQLite store.

    .venv/bin/python bench/graphql_studies.py                        # 10,000 studies, pages of 1,000
    .venv/bin/python bench/graphql_studies.py --studies 200 --page 100 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import Counter
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
from server.site import build_service
from server.store.sqlite import SqliteStore

RESULTS = Path(__file__).resolve().parent / "results"
# _count is written in the query (not a variable) so the cost limit sees the page size
QUERY = """{ ImagingStudyList(_count: %d, _sort: "_id") {
  id started subject { resource { ... on Patient { id gender birthDate } } }
  ObservationList(_reference: part_of, code: "113852") {
    id effectiveDateTime component { code { coding { code } } valueQuantity { value unit } }
  } } }"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--studies", type=int, default=10_000)
    parser.add_argument("--page", type=int, default=1000, help="studies per query")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--dir", type=Path, default=RESULTS, help="where the database lives")
    args = parser.parse_args()
    where = machine()  # before the load this bench makes
    print(where)
    data_dir = args.dir / f"graphql-studies{args.studies}"
    store = SqliteStore(data_dir / "kerma.sqlite3")
    loaded = _load(store, data_dir, args.studies)
    token = add_user(store, f"bench-{time.time_ns()}", "mpe")
    client = create_app(Settings(data_dir=data_dir), store).test_client()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    body = orjson.dumps({"query": QUERY % args.page})

    def graphql() -> int:
        r = client.post("/fhir/$graphql", data=body, headers=headers)
        answer = r.get_json()
        assert r.status_code == 200 and "errors" not in answer, str(answer)[:500]
        studies = answer["data"]["ImagingStudyList"]
        assert len(studies) == args.page
        assert all(len(s["ObservationList"]) == dose_data.EVENTS_PER_STUDY for s in studies)
        return len(r.data)

    rest_url = (f"/fhir/ImagingStudy?_count={args.page}&_sort=_id&_include=ImagingStudy:subject"
                "&_revinclude=Observation:part-of")  # fmt: skip

    def rest() -> int:
        r = client.get(rest_url, headers=headers)
        assert r.status_code == 200, r.get_data(as_text=True)[:300]
        return len(r.data)

    one_study = orjson.dumps({"query": QUERY % 1})

    def graphql_one() -> int:
        """A page of one study: what a request costs whatever it asks (event loop, schema
        validation, token, audit)."""
        r = client.post("/fhir/$graphql", data=one_study, headers=headers)
        assert r.status_code == 200 and "errors" not in r.get_json(), r.get_data(as_text=True)
        return len(r.data)

    started = time.perf_counter()
    graphql()  # the schema is built on first use
    first = time.perf_counter() - started
    queries = _store_queries(store, graphql)
    timings = {"graphql": _timed(graphql, args.repeats), "rest": _timed(rest, args.repeats),
               "graphql, one study": _timed(graphql_one, 50 * args.repeats)}  # fmt: skip
    _report(args, loaded, first, queries, timings, where)


def _load(store: SqliteStore, data_dir: Path, studies: int) -> float | None:
    """Load once; later runs reuse the database (delete bench/results to reload)."""
    marker = data_dir / "loaded.json"
    if marker.exists():
        return None
    service = build_service(store)
    started = time.perf_counter()
    rng = random.Random(3)
    patients = max(1, studies // 2)
    resources = [dose_data.device(i) for i in range(dose_data.DEVICES)]
    resources += [dose_data.patient(i) for i in range(patients)]
    for study_no in range(studies):
        patient_id = f"pat-{rng.randrange(patients)}"
        summary, *events = dose_data.study_observations(rng, patient_id, study_no)
        study = {"resourceType": "ImagingStudy", "id": f"study-{study_no:06d}", "status": "available",
                 "subject": {"reference": f"Patient/{patient_id}"}, "started": summary["effectiveDateTime"],
                 "modality": [{"system": dose_data.DCM, "code": "CT"}]}  # fmt: skip
        for obs in (summary, *events):
            obs["partOf"] = [{"reference": f"ImagingStudy/{study['id']}"}]
        resources += [study, summary, *events]
    with service.store.transaction() as tx:
        for r in resources:
            service.update_in(tx, r["resourceType"], r["id"], r, trusted=True)
    seconds = time.perf_counter() - started
    marker.write_text(json.dumps({"studies": studies, "seconds": seconds}))
    return seconds


def _store_queries(store: SqliteStore, run: Callable[[], int]) -> Counter[str]:
    """The store's search/read calls during one run."""
    calls: Counter[str] = Counter()
    originals = {name: getattr(store, name) for name in ("search", "read")}
    for name, original in originals.items():

        def counted(*a: Any, _original: Any = original, _name: str = name) -> Any:
            calls[_name] += 1
            return _original(*a)

        setattr(store, name, counted)
    try:
        run()
    finally:
        for name in originals:
            delattr(store, name)
    return calls


def _timed(run: Callable[[], int], repeats: int) -> dict[str, float]:
    seconds, size = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        size = run()
        seconds.append(time.perf_counter() - started)
    return {"median_s": statistics.median(seconds), "max_s": max(seconds), "bytes": size}


def _report(
    args: argparse.Namespace,
    loaded: float | None,
    first: float,
    queries: Counter[str],
    timings: dict[str, dict[str, float]],
    where: str,
) -> None:
    print(
        f"GraphQL over {args.studies:,} CT studies (1 summary + 3 events each), pages of {args.page:,}"
    )
    if loaded is not None:
        print(f"  loaded in {loaded:.1f} s")
    print(f"  first query (schema built): {first:.2f} s")
    print(f"  store queries per GraphQL query: {dict(queries)}")
    for name, t in timings.items():
        print(f"  {name:8} median {t['median_s'] * 1e3:.1f} ms, max {t['max_s'] * 1e3:.1f} ms, "
              f"{t['bytes'] / 1e6:.3f} MB")  # fmt: skip
    result = {"date": datetime.now(UTC).isoformat(), "machine": where,
              "studies": args.studies, "page": args.page,
              "first_s": first, "store_queries": dict(queries), **timings}  # fmt: skip
    args.dir.mkdir(parents=True, exist_ok=True)
    (args.dir / "graphql.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
