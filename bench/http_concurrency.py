"""HTTP under concurrent clients: `kerma serve` with one HTTP process and with one per core,
each driven by wrk (Debian's package, C, a small share of one core) with 1 and with 8
connections in turn, in rounds (default 3), once its processes are quiet after ready. Prints
requests/s, p50 and p95 per case, and the median over the rounds of the ratio 8 clients / 1
client, with the machine's cores and load before each case. Then the busy hour: one
process per core, 50 clients searching while 20 DICOM associations (dcmtk's storescu, one
process each) send CT RDSRs that Kerma spools and stores meanwhile (on a copy of the store).

The store is fhir_search.py's (N generated dose Observations, loaded once and cached under
bench/results/); the request is its search (a): a patient's Observations, a random patient each.

    .venv/bin/python bench/http_concurrency.py                         # 200,000 Observations
    .venv/bin/python bench/http_concurrency.py --observations 20000 --patients 1000 --seconds 3
    .venv/bin/python bench/http_concurrency.py --associations 0      # without the busy hour
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fhir_search
from ingest import corpus_copies
from machine import machine, wait_until_quiet

from server.auth.users import add_user
from server.config import Settings
from server.store.sqlite import SqliteStore

KERMA = str(Path(sys.executable).parent / "kerma")
DICOM_PROCESSES = Settings().dicom_processes  # what kerma serve runs unless told
_SCRIPT = """
math.randomseed(7)
request = function()
  return wrk.format("GET", "/fhir/Observation?patient=pat-" .. math.random(0, %(patients)d - 1),
                    {["Authorization"] = "Bearer %(token)s"})
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%.3f %%.3f %%d\\n", summary.requests,
    summary.duration, latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout))
end
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--observations", type=int, default=200_000)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=10, help="per case")
    parser.add_argument("--rounds", type=int, default=3,
                        help="of 1 and 8 clients in turn (a shared machine varies by a third)")  # fmt: skip
    parser.add_argument("--dir", type=Path, default=fhir_search.RESULTS)
    parser.add_argument("--associations", type=int, default=20, help="busy hour: 0 = none")
    parser.add_argument("--busy-clients", type=int, default=50)
    parser.add_argument("--objects", type=int, default=2000, help="busy hour: RDSRs to send")
    parser.add_argument("--dicom-processes", type=int, default=DICOM_PROCESSES,
                        help="busy hour: KERMA_DICOM_PROCESSES (kerma serve's default: 1, the "
                             "listener in its own process; 0: one per core)")  # fmt: skip
    args = parser.parse_args()
    where = machine()  # the load before this bench's own
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    data_dir = args.dir / f"obs{args.observations}-pat{args.patients}"
    store = SqliteStore(data_dir / "kerma.sqlite3")
    fhir_search._load(store, data_dir, args.observations, args.patients)
    token = add_user(store, f"bench-{time.time_ns()}", "mpe")
    store.close()
    script = data_dir / "search.lua"  # beside the store it searches (its user's token)
    script.write_text(_SCRIPT % {"patients": args.patients, "token": token})
    cases: list[dict[str, Any]] = []
    for processes in (1, os.cpu_count() or 1) if args.rounds else ():
        with KermaServer(data_dir, processes) as base:
            for round_ in range(1, args.rounds + 1):  # 1 and 8 clients side by side, each round
                for connections in (1, 8):
                    cases.append({"processes": processes, "connections": connections,
                                  "round": round_, **_wrk(base, script, connections, args.seconds)})  # fmt: skip
    if args.associations:
        cases.append(_busy_hour(data_dir, script, args))
    results = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": where,
               "cores": os.cpu_count(), "observations": args.observations, "cases": cases}  # fmt: skip
    _print(results)
    (args.dir / "http_concurrency.json").write_text(json.dumps(results, indent=2))


def _busy_hour(data_dir: Path, script: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Searches under 50 clients while 20 associations send CT RDSRs (2,000 re-identified
    copies, each association its share: more than a 10 s run can take)."""
    work = Path(tempfile.mkdtemp(prefix="kerma-bench-busy-"))
    shutil.copytree(data_dir, work / "data")  # the cached store stays as it was
    files = sorted(
        corpus_copies(args.dir / f"rdsr-copies-{args.objects}", args.objects).glob("*.dcm")
    )
    n, dcmtk = args.associations, {**os.environ, "TCP_NODELAY": "1"}
    with KermaServer(work / "data", os.cpu_count() or 1, dicom=True,
                     dicom_processes=args.dicom_processes) as base:  # fmt: skip
        before = _received(base, script)
        senders = [subprocess.Popen(["storescu", "-aet", f"BENCH{i}", "-aec", "KERMA", "127.0.0.1",
                                     str(base.dicom_port), *map(str, files[i::n])], env=dcmtk,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                   for i in range(n)]  # fmt: skip
        time.sleep(1)  # the associations are open and sending
        case = _wrk(base, script, args.busy_clients, args.seconds)
        received = _received(base, script) - before
        for sender in senders:
            sender.terminate()
            sender.wait(30)
    shutil.rmtree(work, ignore_errors=True)
    return {"processes": os.cpu_count(), "connections": args.busy_clients, "associations": n,
            "objects_received_per_s": round(received / (args.seconds + 1), 1), **case}  # fmt: skip


def _received(base: Base, script: Path) -> float:
    """kerma_objects_received_total (every SOP class) from /metrics."""
    token = script.read_text().split("Bearer ")[1].split('"')[0]
    request = urllib.request.Request(
        f"{base}/metrics", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        text = answer.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("kerma_objects_received_total"))  # fmt: skip


class Base(str):
    """The server's HTTP base URL, knowing its DICOM port."""

    dicom_port: int


class KermaServer:
    """`kerma serve` on the bench's store with KERMA_HTTP_PROCESSES=processes (and its DICOM
    port open when asked); entered once it is ready and, unless `quiet` is False, once its
    processes have warmed up (under 5 % of a core: the first seconds would be measured too)."""

    def __init__(
        self, data_dir: Path, processes: int, dicom: bool = False, quiet: bool = True,
        dicom_processes: int = DICOM_PROCESSES,
    ) -> None:  # fmt: skip
        self.quiet = quiet
        self.port = fhir_search_free_port()
        self.dicom_port = fhir_search_free_port() if dicom else 0
        env = {k: v for k, v in os.environ.items() if not k.startswith("KERMA_")}
        env.update(KERMA_DATA_DIR=str(data_dir), KERMA_HTTP_PORT=str(self.port),
                   KERMA_DICOM_PORT=str(self.dicom_port), KERMA_HL7_PORT="0",
                   KERMA_LOG_LEVEL="WARNING", KERMA_HTTP_PROCESSES=str(processes),
                   KERMA_DICOM_PROCESSES=str(dicom_processes))  # fmt: skip
        self.process = subprocess.Popen([KERMA, "serve"], env=env)

    def __enter__(self) -> Base:
        base = Base(f"http://127.0.0.1:{self.port}")
        base.dicom_port = self.dicom_port
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{base}/health/ready", timeout=1):
                    if self.quiet:  # its HTTP processes warm up after ready
                        wait_until_quiet(self.process.pid)
                    return base
            except OSError:
                time.sleep(0.2)
        raise SystemExit("kerma serve did not start")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(60)


def fhir_search_free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wrk(base: str, script: Path, connections: int, seconds: int) -> dict[str, Any]:
    load = os.getloadavg()[0]
    run = subprocess.run(["wrk", f"-t{min(connections, 2)}", f"-c{connections}", f"-d{seconds}s",
                          "-s", str(script), f"{base}/"], capture_output=True, text=True,
                         timeout=seconds + 60, check=True)  # fmt: skip
    line = next(line for line in run.stdout.splitlines() if line.startswith("RESULT"))
    requests, micros, p50, p95, errors = line.split()[1:]
    return {"requests_per_s": round(int(requests) / (int(micros) / 1e6), 1),
            "p50_ms": float(p50), "p95_ms": float(p95), "errors": int(errors),
            "load_before": round(load, 2)}  # fmt: skip


def _print(results: dict[str, Any]) -> None:
    print(f"{results['observations']:,} Observations, {results['machine']}, {results['date']}")
    print(f"{'processes':>9} {'round':>5} {'clients':>7} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7} "
          f"{'errors':>6} {'load':>5}")  # fmt: skip
    single: dict[tuple[int, int], float] = {}
    ratios: dict[int, list[float]] = {}
    for case in results["cases"]:
        if "associations" in case:
            print(f"busy hour: {case['connections']} clients searching while {case['associations']} "
                  f"associations send ({case['objects_received_per_s']} objects/s received): "
                  f"{case['requests_per_s']} req/s, p50 {case['p50_ms']} ms, p95 {case['p95_ms']} ms, "
                  f"{case['errors']} errors, load {case['load_before']}")  # fmt: skip
            continue
        print(f"{case['processes']:>9} {case['round']:>5} {case['connections']:>7} "
              f"{case['requests_per_s']:>8} {case['p50_ms']:>7} {case['p95_ms']:>7} "
              f"{case['errors']:>6} {case['load_before']:>5}")  # fmt: skip
        key = (case["processes"], case["round"])
        if case["connections"] == 1:
            single[key] = case["requests_per_s"]
        else:
            ratios.setdefault(case["processes"], []).append(case["requests_per_s"] / single[key])
    for processes, found in ratios.items():
        shown = ", ".join(f"{r:.2f}" for r in found)
        print(f"8 clients / 1 client with {processes} process(es): median "
              f"{statistics.median(found):.2f}x (rounds: {shown})")  # fmt: skip


if __name__ == "__main__":
    main()
