"""The machine a bench ran on, as every bench prints it first: architecture, cores, the load
average when it began (a busy machine gives other numbers, so runs are compared in the same
state), Python and what else the bench names."""

from __future__ import annotations

import os
import platform
import time
import urllib.request
from pathlib import Path


def machine(*also: str) -> str:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return ", ".join([f"{platform.machine()}", f"{os.cpu_count()} cores", f"load {load}",
                      f"Python {platform.python_version()}", *also])  # fmt: skip


def wait_until_quiet(pid: int, share: float = 0.05, seconds: float = 120) -> float:
    """Wait until process `pid` and its descendants use under `share` of a core over half a
    second (a server warming up after it said ready: imports, schemas, copies), at most
    `seconds`; returns the seconds waited. Linux (/proc)."""
    started = time.monotonic()
    ticks = os.sysconf("SC_CLK_TCK")
    used = _cpu_ticks(pid)
    while time.monotonic() - started < seconds:
        time.sleep(0.5)
        now = _cpu_ticks(pid)
        if (now - used) / ticks < share * 0.5:
            break
        used = now
    return round(time.monotonic() - started, 1)


def _cpu_ticks(root: int) -> int:
    """User and system CPU ticks of `root` and every process below it."""
    return sum(_ticks(pid) for pid in descendants(root))


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of process `pid` (all its threads, none of its children)."""
    return _ticks(pid) / os.sysconf("SC_CLK_TCK")


def _ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # ended meanwhile
        return 0
    return int(fields[11]) + int(fields[12])


def answers(url: str) -> bool:
    """Whether an HTTP GET of `url` answers 200 (a server up, or ready)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (Linux /proc)."""
    found = [pid]
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:  # ended meanwhile
        return found
    for task in tasks:
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            found += descendants(int(child))
    return found
