"""C-STORE throughput over loopback: Kerma's SCP against dcmtk's storescp as the reference.

N CT RDSRs (default 2,000; the copies bench/ingest.py writes) are sent by dcmtk's storescu on
one association, then split over P parallel associations (default 8), to `kerma serve` (a
separate process with its listener in one process per core and its spool worker storing what
arrives meanwhile; sent to once its processes have warmed up) and to `storescp --fork -od`
(which writes files but does not fsync them; Kerma does).
Counted: objects received, spooled (fsynced) and acknowledged per second; Kerma's processing
into the store is timed too (until its spool is empty), and how fast the spool drains once the
senders are done, beside `kerma ingest --workers <cores>` of the same files in the same run. All dcmtk tools run with TCP_NODELAY=1.
dcmtk is the sender because a pynetdicom SCU re-encodes each dataset with pydicom (about 50 ms
per CT RDSR): it would measure the client, not the SCP.

    .venv/bin/python bench/cstore.py
    .venv/bin/python bench/cstore.py --objects 200 --parallel 2
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pynetdicom
from ingest import RESULTS, corpus_copies
from machine import cpu_seconds, machine, wait_until_quiet
from pynetdicom import AE

DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--dir", type=Path, default=RESULTS)
    args = parser.parse_args()
    files = sorted(corpus_copies(args.dir / f"ingest-{args.objects}", args.objects).glob("*.dcm"))
    results: dict[str, object] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(f"pynetdicom {pynetdicom.__version__}"),
        "objects": len(files),
        "parallel": args.parallel,
    }
    work = Path(tempfile.mkdtemp(prefix="kerma-cstore-bench-"))
    try:
        results["kerma"] = _run_kerma(files, args.parallel, work, listeners=1)
        results["kerma_every_core"] = _run_kerma(files, args.parallel, work, listeners=0)
        results["storescp"] = _run_storescp(files, args.parallel, work)
        results["ingest"] = _run_ingest(files, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for kerma in ("kerma", "kerma_every_core"):
        for key in ("one", "parallel"):
            ratio = results[kerma][key] / results["storescp"][key]  # type: ignore[index]
            results[f"ratio_{key}" + kerma.removeprefix("kerma")] = round(ratio, 3)
    _print(results)
    args.dir.mkdir(parents=True, exist_ok=True)
    (args.dir / "cstore.json").write_text(json.dumps(results, indent=2))


def _run_kerma(files: list[Path], parallel: int, work: Path, listeners: int) -> dict[str, Any]:
    """`listeners`: KERMA_DICOM_PROCESSES (1: the listener in kerma serve; 0: one per core)."""
    data_dir = work / f"kerma-{listeners}"
    port = free_port()
    env = {
        **os.environ,
        "KERMA_DICOM_PROCESSES": str(listeners),
        "KERMA_DATA_DIR": str(data_dir),
        "KERMA_HTTP_PORT": str(free_port()),
        "KERMA_DICOM_PORT": str(port),
        "KERMA_HL7_PORT": "0",
        "KERMA_LOG_LEVEL": "WARNING",
    }
    kerma = Path(sys.executable).parent / "kerma"
    server = subprocess.Popen([str(kerma), "serve"], env=env, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _echo(port))
        warming_s = wait_until_quiet(server.pid)  # its HTTP processes warm up after ready
        started, cpu = time.perf_counter(), [cpu_seconds(server.pid)]
        one = storescu(files, port, "KERMA", 1)
        cpu.append(cpu_seconds(server.pid))
        many = storescu(files, port, "KERMA", parallel)
        cpu.append(cpu_seconds(server.pid))
        left, sent = len(list((data_dir / "spool").glob("*.dcm"))), time.perf_counter()
        wait_for(lambda: not list((data_dir / "spool").glob("*.dcm")), seconds=3600)
        done = time.perf_counter()
        processed = 2 * len(files) / (done - started)
    finally:
        server.terminate()
        server.wait(60)
    # kerma serve's own CPU per object: the listener's, where it listens in kerma serve (HTTP
    # and the spool worker run in processes of their own)
    per_object_ms = [round(1e3 * (b - a) / len(files), 2) for a, b in itertools.pairwise(cpu)]
    return {"one": one, "parallel": many, "processed": round(processed, 1), "warming_s": warming_s,
            "left_after_sending": left, "drain": round(left / max(done - sent, 1e-9), 1),
            "serve_cpu_ms_per_object": per_object_ms}  # fmt: skip


def _run_ingest(files: list[Path], work: Path) -> float:
    """Files/s of `kerma ingest --workers <cores>` of the same files (interpreter start included)."""
    env = {**os.environ, "KERMA_DATA_DIR": str(work / "ingest")}
    kerma = Path(sys.executable).parent / "kerma"
    started = time.perf_counter()
    subprocess.run([str(kerma), "ingest", "--workers", str(os.cpu_count() or 1), *map(str, files)],
                   env=env, check=True, capture_output=True)  # fmt: skip
    return round(len(files) / (time.perf_counter() - started), 1)


def _run_storescp(files: list[Path], parallel: int, work: Path) -> dict[str, float]:
    out = work / "storescp"
    out.mkdir()
    port = free_port()
    server = subprocess.Popen(
        # --fork: a process per association, else storescp serves parallel senders in turn
        ["storescp", "--fork", "-od", str(out), "-aet", "STORESCP", str(port)],
        env=DCMTK_ENV,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _echo(port, "STORESCP"))
        return {
            "one": storescu(files, port, "STORESCP", 1),
            "parallel": storescu(files, port, "STORESCP", parallel),
        }
    finally:
        server.terminate()
        server.wait(60)


def storescu(files: list[Path], port: int, called: str, associations: int) -> float:
    """Objects/s: `associations` storescu processes, each sending its share on one association."""
    shares = [files[i::associations] for i in range(associations)]
    started = time.perf_counter()
    senders = [
        subprocess.Popen(
            ["storescu", "-aet", "BENCH", "-aec", called, "127.0.0.1", str(port)]
            + [str(f) for f in share],
            env=DCMTK_ENV,
            stderr=subprocess.PIPE,
        )
        for share in shares
    ]
    for sender in senders:
        _, err = sender.communicate()
        if sender.returncode != 0 or b"Store Failed" in err:
            raise RuntimeError(f"storescu failed: {err.decode()[-500:]}")
    return round(len(files) / (time.perf_counter() - started), 1)


def _echo(port: int, called: str = "KERMA") -> bool:
    ae = AE(ae_title="BENCH")
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    if not assoc.is_established:
        return False
    assoc.release()
    return True


def wait_for(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _print(r: dict[str, Any]) -> None:
    kerma, ref = r["kerma"], r["storescp"]
    print(f"{r['date']}  {r['machine']}")
    print(f"{r['objects']} CT RDSR C-STOREs over loopback, objects/s (received, on disk, "
          f"acknowledged); kerma serve sent to once quiet ({kerma['warming_s']} s after C-ECHO)")  # fmt: skip
    for key, label in (("", "the listener in kerma serve"), ("_every_core", "a listener per core")):
        run = r["kerma" + key]
        print(f"  storescu -> kerma serve, {label}: 1 association {run['one']} "
              f"({r['ratio_one' + key]}x storescp), {r['parallel']} associations "
              f"{run['parallel']} ({r['ratio_parallel' + key]}x storescp)")  # fmt: skip
    print(f"  storescu -> storescp: 1 association {ref['one']}, {r['parallel']} associations "
          f"{ref['parallel']}")  # fmt: skip
    one_ms, many_ms = kerma["serve_cpu_ms_per_object"]
    print(f"  kerma serve's own CPU (the listener in it) per object: 1 association {one_ms} ms, "
          f"{r['parallel']} associations {many_ms} ms")  # fmt: skip
    print(f"  kerma (the listener in kerma serve): stored into FHIR while receiving, objects/s: "
          f"{kerma['processed']}")  # fmt: skip
    drain = kerma["drain"]
    print(f"  kerma: the spool after sending ({kerma['left_after_sending']} left), objects/s: {drain}"
          f"  ({drain / r['ingest']:.2f}x kerma ingest of the same files: {r['ingest']}/s)")  # fmt: skip


if __name__ == "__main__":
    main()
