"""The benchmarks run in CI as smoke tests (tiny sizes), so they cannot rot. Two run at a time,
each test waiting for its own: most of a bench's time is waiting (a server starting, its
processes quieting, mails arriving); one after the other they held a test worker for 121 s,
and all at once they took the cores from the other worker."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

BENCH = Path(__file__).parents[2] / "bench"


class Benches:
    """Bench scripts run two at a time in the order given, each known by a name."""

    def __init__(self, scripts: dict[str, tuple[str, ...]]) -> None:
        self._pool = ThreadPoolExecutor(max_workers=2)
        self._runs: dict[str, Future[subprocess.CompletedProcess[str]]] = {
            name: self._pool.submit(_run, *script) for name, script in scripts.items()
        }

    def output(self, name: str) -> str:
        """The bench's printed report, once it ended; fails the test when the script failed."""
        result = self._runs[name].result()
        assert result.returncode == 0, result.stderr
        return result.stdout

    def stop(self) -> None:
        self._pool.shutdown(cancel_futures=True)


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True,
                          text=True, timeout=300)  # fmt: skip
