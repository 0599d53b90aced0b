"""C-STORE over loopback, against dcmtk's storescp (bench/cstore.py)."""

from __future__ import annotations

from pathlib import Path

from tests.bench.run import run


def test_cstore_bench_runs(tmp_path: Path) -> None:
    out = run("cstore.py", "--objects", "16", "--parallel", "2", "--dir", str(tmp_path))
    assert "storescu -> kerma serve, the listener in kerma serve: 1 association" in out
    assert "storescu -> kerma serve, a listener per core: 1 association" in out
    assert "storescu -> storescp: 1 association" in out and "2 associations" in out


def test_cstore_instructions_bench_runs() -> None:
    out = run("cstore_instructions.py", "--objects", "2", "--parallel", "1")
    assert "2 CT RDSRs on 1 association(s):" in out and "M per object" in out
