"""HTTP on every core, and the busy hour (bench/http_concurrency.py)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.bench.run import run


def test_http_concurrency_bench_runs(tmp_path: Path) -> None:
    out = run("http_concurrency.py", "--observations", "400", "--patients", "20",
               "--seconds", "1", "--rounds", "1", "--dir", str(tmp_path), "--associations", "2",
               "--busy-clients", "4", "--objects", "20")  # fmt: skip
    assert "8 clients / 1 client with 1 process(es)" in out
    assert f"8 clients / 1 client with {os.cpu_count()} process(es)" in out
    assert "busy hour: 4 clients searching while 2 associations send" in out
