"""What a start of `kerma serve` costs: seconds until /health/ready, until every process is
quiet (warm: imports, schemas, the facts' copy), the CPU seconds all its processes spent, and
each process's memory (PSS: shared pages counted once over the processes; private: its own).

    .venv/bin/python bench/serve_start.py [--runs 3] [--http-processes 2]

Linux only (/proc). An empty data directory each run: the cost of the processes, not of data.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cstore import free_port
from ingest import RESULTS
from machine import answers, descendants, machine, wait_until_quiet

KERMA = Path(sys.executable).parent / "kerma"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--http-processes", type=int, default=2)
    parser.add_argument("--dir", type=Path, default=RESULTS)
    args = parser.parse_args()
    runs = [_start(args.http_processes) for _ in range(args.runs)]
    print(f"kerma serve, {args.http_processes} HTTP processes, {machine()}")
    for n, run in enumerate(runs, 1):
        print(f"  run {n}: ready {run['ready_s']} s, quiet {run['quiet_s']} s, "
              f"CPU {run['cpu_s']} s over {len(run['processes'])} processes, "
              f"PSS {sum(p['pss_mb'] for p in run['processes'])} MB")  # fmt: skip
    for process in runs[-1]["processes"]:
        print(f"    {process['what']:<16} PSS {process['pss_mb']:>4} MB, "
              f"private {process['private_mb']:>4} MB")  # fmt: skip
    args.dir.mkdir(parents=True, exist_ok=True)
    (args.dir / "serve_start.json").write_text(json.dumps(runs, indent=2))


def _start(http_processes: int) -> dict[str, object]:
    data_dir, port = Path(tempfile.mkdtemp(prefix="kerma-serve-start-")), free_port()
    env = {**os.environ, "KERMA_DATA_DIR": str(data_dir), "KERMA_HTTP_PORT": str(port),
           "KERMA_DICOM_PORT": str(free_port()), "KERMA_HL7_PORT": "0",
           "KERMA_LOG_LEVEL": "WARNING", "KERMA_HTTP_PROCESSES": str(http_processes)}  # fmt: skip
    started = time.monotonic()
    server = subprocess.Popen([str(KERMA), "serve"], env=env, stderr=subprocess.DEVNULL)
    try:
        while not answers(f"http://127.0.0.1:{port}/health/ready"):
            time.sleep(0.05)
        ready = time.monotonic() - started
        wait_until_quiet(server.pid)
        quiet = time.monotonic() - started
        pids = descendants(server.pid)
        return {"ready_s": round(ready, 1), "quiet_s": round(quiet, 1),
                "cpu_s": round(sum(map(_cpu_s, pids)), 1),
                "processes": [_memory(pid) for pid in pids]}  # fmt: skip
    finally:
        server.terminate()
        server.wait(60)
        shutil.rmtree(data_dir, ignore_errors=True)


def _cpu_s(pid: int) -> float:
    """User and system CPU of a process and of its children it waited for."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _memory(pid: int) -> dict[str, object]:
    lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
    kb = {line.split(":")[0]: int(line.split()[1]) for line in lines}
    return {"pid": pid, "what": _what(pid), "pss_mb": kb["Pss"] // 1024,
            "private_mb": (kb["Private_Clean"] + kb["Private_Dirty"]) // 1024}  # fmt: skip


def _what(pid: int) -> str:
    """kerma serve, the resource tracker, the fork server, the spool worker (nice 10), or an
    HTTP or DICOM process (forked by the fork server, or spawned where there is none)."""
    command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    parent = Path(f"/proc/{stat[1]}/cmdline").read_bytes().decode(errors="replace")
    if "kerma serve" in command.replace("/kerma serve", "kerma serve"):
        return "kerma serve"
    if "resource_tracker" in command:
        return "resource tracker"
    if "forkserver" in command and "forkserver" not in parent:
        return "fork server"
    return "spool worker" if stat[16] == "10" else "HTTP/DICOM"


if __name__ == "__main__":
    main()
