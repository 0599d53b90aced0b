"""The benchmarks run in CI as smoke tests (tiny sizes), so they cannot rot. Two run at a time,
each test waiting for its own: most of a bench's time is waiting (a server starting, its
processes quieting, mails arriving); one after the other they held a test worker for 121 s,
and all at once they took the cores from the other worker. Each runs in a process forked
from one that imported Kerma once (tests/bench/zygote.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).parents[2] / "bench"


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


class Benches:
    """Bench scripts run two at a time in the order given, each known by a name; their output
    in `folder`."""

    def __init__(self, scripts: dict[str, tuple[str, ...]], folder: Path) -> None:
        self._scripts = list(scripts.items())
        self._folder = folder
        self._runs: dict[str, Future[Ran]] = {name: Future() for name in scripts}
        self._lock = threading.Lock()  # the requests, from this thread and the collecting one
        # a session of its own: a bench that hangs is killed with the zygote (os.killpg)
        self._zygote = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.zygote"], cwd=BENCH.parent,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        for _ in range(2):
            self._next()
        threading.Thread(target=self._collect, daemon=True).start()

    def output(self, name: str) -> str:
        """The bench's printed report, once it ended; fails the test when the script failed."""
        result = self._runs[name].result(timeout=300)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def stop(self) -> None:
        with self._lock:
            self._scripts.clear()
            assert self._zygote.stdin is not None
            self._zygote.stdin.close()  # it ends once the benches running have ended
        try:
            self._zygote.wait(300)
        except subprocess.TimeoutExpired:
            os.killpg(self._zygote.pid, signal.SIGKILL)
            raise

    def _next(self) -> None:
        """Start the next bench, if any is left."""
        with self._lock:
            if not self._scripts:
                return
            name, (script, *args) = self._scripts.pop(0)
            assert self._zygote.stdin is not None
            request = [name, str(BENCH / script), args, *map(str, self._files(name))]
            self._zygote.stdin.write(json.dumps(request) + "\n")
            self._zygote.stdin.flush()

    def _collect(self) -> None:
        """Each bench's result as the zygote says it ended; the next one started."""
        assert self._zygote.stdout is not None
        for line in self._zygote.stdout:
            name, status = line.split()
            out, err = (path.read_text() if path.exists() else "" for path in self._files(name))
            self._runs[name].set_result(Ran(int(status), out, err))
            self._next()

    def _files(self, name: str) -> tuple[Path, Path]:
        return self._folder / f"{name}.out", self._folder / f"{name}.err"
