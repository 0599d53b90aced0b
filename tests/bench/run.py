"""The benchmarks run in CI as smoke tests (tiny sizes), so they cannot rot; a file per bench
or few, so that the test workers share them out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parents[2] / "bench"


def run(script: str, *args: str) -> str:
    """The bench's printed report; fails the test when the script fails."""
    result = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout
