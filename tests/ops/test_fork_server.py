"""kerma serve starts its fork server early, only where it will fork processes, and with the
web app preloaded only where HTTP runs in processes of its own (server/processes.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

# in a process of its own: a fork server, once started, lives as long as its parent
_CHILD = """
import os, sys
from pathlib import Path
from server.config import Settings
from server.processes import start_fork_server

start_fork_server(Settings(http_processes=int(sys.argv[1]), dicom_port=int(sys.argv[2])))
me = str(os.getpid())
for stat in Path("/proc").glob("[0-9]*/stat"):
    try:
        ppid = stat.read_text().rsplit(")", 1)[1].split()[1]
        cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\\0", b" ").decode()
    except OSError:
        continue
    if ppid == me and "forkserver" in cmdline:
        print(cmdline.split("main(", 1)[1].split("]", 1)[0].split("[", 1)[1])
"""


@pytest.mark.parametrize(("http_processes", "dicom_port", "preloaded"), [
    (1, 0, ""),  # nothing to fork: no fork server
    (1, 11112, "'server.preload'"),  # the DICOM listeners and the spool worker
    (2, 0, "'server.preload', 'server.preload_http'"),  # and the HTTP processes
])  # fmt: skip
def test_a_fork_server_where_processes_will_be_forked(
    http_processes: int, dicom_port: int, preloaded: str
) -> None:
    child = subprocess.run([sys.executable, "-c", _CHILD, str(http_processes), str(dicom_port)],
                           capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    assert child.stdout.strip() == preloaded
