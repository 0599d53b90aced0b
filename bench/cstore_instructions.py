"""Instructions the DICOM listener executes per stored object, counted by valgrind's callgrind:
repeatable on a machine whose CPU seconds vary by a third from run to run.

The listener (`start_scp`, as `kerma serve` runs it, spooling into a temporary folder) runs in
this script under callgrind with instrumentation off while Python imports; dcmtk's storescu
sends the CT RDSR copies of ingest.py, first a few to warm up, then `--objects` on
`--parallel` associations with instrumentation on. Counted: user-space instructions of every
thread of the listener's process (not the kernel's work: sockets, fsync).

    .venv/bin/python bench/cstore_instructions.py                 # 100 objects, 1 and 8 associations
    PYTHONPATH=<other checkout> .venv/bin/python bench/cstore_instructions.py   # another version
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cstore import free_port, storescu
from ingest import RESULTS, corpus_copies
from machine import machine

_UNDER_VALGRIND = "KERMA_BENCH_LISTENER"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, default=100)
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    if os.environ.get(_UNDER_VALGRIND):
        _listen_and_count(args.objects, int(os.environ[_UNDER_VALGRIND]))
        return
    print(machine("valgrind " + _valgrind_version()))
    for parallel in args.parallel:
        instructions = _count(args.objects, parallel)
        print(f"  {args.objects} CT RDSRs on {parallel} association(s): {instructions:,} "
              f"instructions, {instructions / args.objects / 1e6:.2f} M per object")  # fmt: skip


def _count(objects: int, parallel: int) -> int:
    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "callgrind.out"
        subprocess.run(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
             sys.executable, __file__, "--objects", str(objects)],
            env={**os.environ, _UNDER_VALGRIND: str(parallel)}, check=True, capture_output=True,
        )  # fmt: skip
        # the dump taken right after sending (callgrind_control -d) is the file's ".1"
        [totals] = re.findall(r"^totals: (\d+)", (out.parent / (out.name + ".1")).read_text(), re.M)
        return int(totals)


def _listen_and_count(objects: int, parallel: int) -> None:
    from server.dicom.access import CallingAeTitles
    from server.dicom.scp import ScpConfig, start_scp
    from server.dicom.spool import Spool
    from server.logs import configure

    configure("WARNING")
    files = sorted(corpus_copies(RESULTS / f"ingest-{objects}", objects).glob("*.dcm"))
    port = free_port()
    with tempfile.TemporaryDirectory() as work:
        server = start_scp(ScpConfig("KERMA", "127.0.0.1", port), Spool(Path(work)),
                           lambda: None, CallingAeTitles("*", set))  # fmt: skip
        storescu(files[:5], port, "KERMA", 1)  # the first association's lazy imports
        _control("-z")  # counts from zero
        _control("-i", "on")
        storescu(files, port, "KERMA", parallel)
        _control("-i", "off")
        _control("-d")
        server.shutdown()


def _control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(os.getpid())], check=True, capture_output=True)


def _valgrind_version() -> str:
    return subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    main()
