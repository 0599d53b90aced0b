"""The machine a bench ran on, as every bench prints it first: architecture, cores, the load
average when it began (a busy machine gives other numbers, so runs are compared in the same
state), Python and what else the bench names."""

from __future__ import annotations

import os
import platform


def machine(*also: str) -> str:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return ", ".join([f"{platform.machine()}", f"{os.cpu_count()} cores", f"load {load}",
                      f"Python {platform.python_version()}", *also])  # fmt: skip
