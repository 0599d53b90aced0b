"""Statistics over generated irradiation events (bench/dose_stats.py)."""

from __future__ import annotations

from pathlib import Path

from tests.bench.run import run


def test_dose_stats_bench_runs(tmp_path: Path) -> None:
    out = run("dose_stats.py", "--events", "2000", "--repeat", "1", "--dir", str(tmp_path))
    assert "2000 irradiation events" in out and "groups:" in out
