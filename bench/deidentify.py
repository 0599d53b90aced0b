"""De-identification for the registry (server/outbound/deidentify.py, what the forwarder sends
to KERMA_FORWARD_DEIDENTIFIED_TO): CPU time per dose report, the corpus's largest by default
(fluoroscopy reports of hundreds of irradiation events are the slow ones).

    .venv/bin/python bench/deidentify.py
    .venv/bin/python bench/deidentify.py --repeats 5 --names RF-RDSR-Philips_Azurion.dcm
    PYTHONPATH=<other checkout> .venv/bin/python bench/deidentify.py   # another version
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path

from machine import machine

from server.outbound.deidentify import deidentified

CORPUS = Path(__file__).resolve().parent.parent / "tests/data/dicom"
RESULTS = Path(__file__).resolve().parent / "results"
KEY = bytes(32)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--names", nargs="+", help="corpus file names (default: the 6 largest)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=RESULTS)
    args = parser.parse_args()
    files = sorted(CORPUS.rglob("*.dcm"), key=lambda p: p.stat().st_size, reverse=True)
    chosen = [p for p in files if p.name in args.names] if args.names else files[:6]
    warnings.simplefilter("ignore")  # the corpus's invalid UIDs, said once per value
    print(f"de-identification, median of {args.repeats}, {machine()}")
    rows = []
    for path in chosen:
        data = path.read_bytes()
        seconds = statistics.median(_cpu_s(data) for _ in range(args.repeats))
        rows.append({"file": path.name, "bytes": len(data), "cpu_s": round(seconds, 3)})
        print(f"  {path.name:<45} {len(data) / 1e6:6.2f} MB {seconds:7.2f} CPU-s")
    print(f"  all {len(rows)}: {sum(r['cpu_s'] for r in rows):.2f} CPU-s")
    args.dir.mkdir(parents=True, exist_ok=True)
    (args.dir / "deidentify.json").write_text(json.dumps(rows, indent=2))


def _cpu_s(data: bytes) -> float:
    started = time.process_time()
    deidentified(data, KEY)
    return time.process_time() - started


if __name__ == "__main__":
    main()
