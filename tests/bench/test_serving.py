"""What a start of kerma serve costs, and the HL7 listener and alert mails it serves
(bench/serve_start.py, hl7.py, notify.py)."""

from __future__ import annotations

from pathlib import Path

from tests.bench.run import run


def test_serve_start_bench_runs(tmp_path: Path) -> None:
    out = run("serve_start.py", "--runs", "1", "--http-processes", "1", "--dir", str(tmp_path))
    assert "run 1: ready" in out and "fork server" in out and "spool worker" in out


def test_hl7_bench_runs(tmp_path: Path) -> None:
    out = run("hl7.py", "--messages", "40", "--parallel", "2", "--dir", str(tmp_path))
    assert "40 ADT messages" in out and "2 connections: kerma serve" in out
    assert "python-hl7 answering only" in out  # its reference, in the same run


def test_notify_bench_runs(tmp_path: Path) -> None:
    out = run("notify.py", "--rounds", "2", "--dir", str(tmp_path))
    assert "2 C-STOREs of a report above a DRL" in out and "after C-STORE Success" in out
    assert "(mails per report: [" in out
