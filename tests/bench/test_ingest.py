"""Ingest, OCR and the skin dose agreement (bench/ingest.py, ocr.py,
skin_dose_agreement.py)."""

from __future__ import annotations

from pathlib import Path

from tests.bench.run import run


def test_ingest_bench_runs(tmp_path: Path) -> None:
    out = run("ingest.py", "--copies", "12", "--workers", "1", "2", "--dir", str(tmp_path))
    assert "12 CT RDSRs" in out and "workers 2:" in out
    assert "RF 316-event RDSR" in out


def test_ocr_bench_runs(tmp_path: Path) -> None:
    out = run(
        "ocr.py",
        *("--exams", "1", "--sizes", "512", "--degradations", "clean", "--dir", str(tmp_path)),
    )
    assert "all/clean" in out and "4 pages" in out


def test_skin_dose_agreement_bench_runs(tmp_path: Path) -> None:
    out = run("skin_dose_agreement.py", "--repeats", "1", "--dir", str(tmp_path))
    assert "RF-RDSR-Siemens-Zee.dcm" in out and "corr" in out
