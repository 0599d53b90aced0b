"""Runs bench scripts in processes forked from this one, which imported Kerma once: a bench
started with `python` spent 1-1.5 s of a core importing it, a dozen times a run (the forks
share the same start; what a bench measures runs after it, as before).

One request a line on stdin, JSON: `[name, script, [args], stdout file, stderr file]`. Each
is run in a fork as `python <script> <args>` would run it; `<name> <exit status>` is written
on stdout when the fork ends. Ends when stdin closes and its forks have ended. One
thread only, so that forking it is safe: it polls stdin and reaps its forks in turn."""

from __future__ import annotations

import json
import os
import runpy
import select
import sys
import traceback
from typing import Any

import server.app  # noqa: F401  # what the benches import, imported once for all of them

_STDIN = 0


def main() -> None:
    running: dict[int, str] = {}  # pid -> the request's name
    reading = True
    pending = b""  # a request's first part, until its line ends
    while reading or running:
        ready, _, _ = select.select([_STDIN] if reading else [], [], [], 0.05)
        if ready:
            # read from the descriptor, not sys.stdin: its buffer would hold a second request
            # that select no longer sees, and the request would wait for the next one
            received = os.read(_STDIN, 65536)
            reading = bool(received)
            *lines, pending = (pending + received).split(b"\n")
            for line in lines:
                name, *request = json.loads(line)
                running[_fork(request)] = name
        for pid, status in _ended(running):
            # flushed at once: a fork must not inherit anything this process buffered
            print(running.pop(pid), os.waitstatus_to_exitcode(status), flush=True)


def _ended(running: dict[int, str]) -> list[tuple[int, int]]:
    ended = []
    for pid in list(running):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            ended.append((pid, status))
    return ended


def _fork(request: list[Any]) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:  # the fork ends here, whatever happens: it must never go on as a second zygote
        code = _run(*request)
    except BaseException:
        traceback.print_exc()  # where its output files could not be made: the zygote's stderr
    finally:
        os._exit(code)


def _run(script: str, args: list[str], out: str, err: str) -> int:
    """The script as `python script args` runs it, printing into `out` and `err`; its exit
    status."""
    for fd, path in ((1, out), (2, err)):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(script))  # as python puts the script's folder first
    try:
        runpy.run_path(script, run_name="__main__")
        code = 0
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            code = e.code or 0
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    return code


if __name__ == "__main__":
    main()
