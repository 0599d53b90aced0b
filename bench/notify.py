"""Delay from C-STORE to notification: a dose report above a DRL is sent to `kerma serve`
(embedded store, defaults), and the time until the alert mail arrives at a local SMTP server
(aiosmtpd) is measured.

Each round sends a new copy of the Philips CT RDSR (its DLP total of 1102 mGy·cm is above the
UK DRL of 660) with dcmtk's storescu; a Subscription made over the REST API mails every
DetectedIssue. Counted from the moment storescu has its C-STORE Success (the object is on
disk; storescu has released the association and ended by then) and from the moment storescu
starts, until the round's first mail; the next round waits until no more mail comes (a report
may raise more than one DetectedIssue: the count per report is printed).

    .venv/bin/python bench/notify.py
    .venv/bin/python bench/notify.py --rounds 5
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
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from cstore import DCMTK_ENV, free_port, wait_for
from ingest import CORPUS, RESULTS
from machine import answers, machine
from pydicom import dcmread
from pydicom.uid import generate_uid

from server.auth.users import add_user
from server.store.sqlite import SqliteStore

PHILIPS = CORPUS / "CT-SC-Philips_Brilliance16P.dcm"


class Inbox:
    def __init__(self) -> None:
        self.arrivals: list[float] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.arrivals.append(time.perf_counter())
        return "250 OK"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--dir", type=Path, default=RESULTS)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kerma-notify-bench-"))
    inbox = Inbox()
    smtp_port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    http_port, dicom_port = free_port(), free_port()
    data_dir = work / "kerma"
    data_dir.mkdir()
    store = SqliteStore(data_dir / "kerma.sqlite3")
    token = add_user(store, "bench", "mpe")
    store.close()
    env = {
        **os.environ,
        "KERMA_DATA_DIR": str(data_dir),
        "KERMA_HTTP_PORT": str(http_port),
        "KERMA_DICOM_PORT": str(dicom_port),
        "KERMA_HL7_PORT": "0",
        "KERMA_DRL_SETS": "UKHSA GB 2022",
        "KERMA_SMTP_HOST": "127.0.0.1",
        "KERMA_SMTP_PORT": str(smtp_port),
        "KERMA_LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "kerma"), "serve"], env=env, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{http_port}/health"))
        _subscribe(http_port, token)
        after_success, after_start, mails = [], [], []
        for n in range(args.rounds):
            path = _copy(work / f"ct-{n}.dcm")
            before = len(inbox.arrivals)
            started = time.perf_counter()
            _storescu(path, dicom_port)
            stored = time.perf_counter()
            wait_for(lambda before=before: len(inbox.arrivals) > before, seconds=60)  # type: ignore[misc]
            after_success.append(inbox.arrivals[before] - stored)  # this round's first mail
            after_start.append(inbox.arrivals[before] - started)
            mails.append(_all_arrived(inbox) - before)  # before the next round sends
    finally:
        server.terminate()
        server.wait(60)
        controller.stop()
        shutil.rmtree(work, ignore_errors=True)
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "rounds": args.rounds,
        "from_success_s": _summary(after_success),
        "from_start_s": _summary(after_start),
        "mails_per_report": sorted(set(mails)),
    }
    print(f"{results['date']}  {results['machine']}")
    print(f"{args.rounds} C-STOREs of a report above a DRL -> alert mail at a local SMTP server "
          f"(mails per report: {results['mails_per_report']}; timed: the first)")  # fmt: skip
    for key, label in (
        ("from_success_s", "after C-STORE Success"),
        ("from_start_s", "after storescu start"),
    ):
        s = results[key]
        print(
            f"  {label:24} median {s['median']:.2f} s  p95 {s['p95']:.2f} s  max {s['max']:.2f} s"
        )  # type: ignore[index]
    args.dir.mkdir(parents=True, exist_ok=True)
    (args.dir / "notify.json").write_text(json.dumps(results, indent=2))


def _all_arrived(inbox: Inbox, quiet_s: float = 1.5) -> int:
    """The mails received once none came for `quiet_s` (the dispatcher polls every 0.5 s)."""
    count = len(inbox.arrivals)
    while True:
        time.sleep(quiet_s)
        if len(inbox.arrivals) == count:
            return count
        count = len(inbox.arrivals)


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "median": round(statistics.median(ordered), 3),
        "p95": round(p95, 3),
        "max": round(ordered[-1], 3),
    }


def _copy(path: Path) -> Path:
    ds = dcmread(PHILIPS)
    ds.StudyInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid()
    ds.save_as(path)
    return path


def _storescu(path: Path, port: int) -> None:
    done = subprocess.run(
        ["storescu", "-aet", "BENCH", "-aec", "KERMA", "127.0.0.1", str(port), str(path)],
        env=DCMTK_ENV,
        capture_output=True,
    )
    if done.returncode != 0 or b"Store Failed" in done.stderr:
        raise RuntimeError(f"storescu failed: {done.stderr.decode()[-500:]}")


def _subscribe(port: int, token: str) -> None:
    body = {
        "resourceType": "Subscription",
        "status": "active",
        "reason": "bench",
        "criteria": "DetectedIssue?",
        "channel": {"type": "email", "endpoint": "mailto:mpe@hospital.test"},
    }
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/fhir/Subscription",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/fhir+json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        assert r.status == 201


if __name__ == "__main__":
    main()
