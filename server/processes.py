"""Serving on every core: a door (HTTP, DICOM) in several processes on one port. A Python
process runs its code on one core at a time (the interpreter lock), so threads alone left the
second core idle however many clients came.

How connections are shared is the door's: HTTP processes accept on one socket, each while it
holds the fewest connections (server/fair_accept.py); DICOM listeners each listen on a socket
of their own (SO_REUSEPORT, server/network.py), the kernel spreading associations by address."""

from __future__ import annotations

import functools
import logging
import multiprocessing
import multiprocessing.context
import multiprocessing.forkserver
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from server.config import Settings
from server.logs import log_event

log = logging.getLogger("kerma")
_START_S = 120.0  # a process spawned where there is no fork imports everything: seconds


Context = multiprocessing.context.ForkServerContext | multiprocessing.context.SpawnContext


_PRELOAD = ["server.preload"]  # what the fork server imports for every process it forks


@functools.cache
def process_context() -> Context:
    """How the server's processes start: forked from a fork server that imported Kerma once
    (server/preload.py; and the web app with its GraphQL schema, `start_fork_server`):
    milliseconds each, and their pages shared, where a spawned process spent seconds of a core
    importing and building. Forking the server itself is no choice (its threads' locks would be copied
    held); spawned where there is no fork."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    return context


def http_process_count(settings: Settings) -> int:
    """KERMA_HTTP_PROCESSES; 0 means one per core."""
    return settings.http_processes or os.cpu_count() or 1


def start_fork_server(settings: Settings) -> None:
    """Start the fork server where kerma serve will fork processes (HTTP in several, the DICOM
    listeners and the spool worker), early: it imports Kerma on the other core while kerma
    serve imports its own, instead of after (ready 0.6 s sooner on 2 cores). Where HTTP runs
    in processes of its own, it also imports and builds what they run (server/preload_http.py:
    the web app, its GraphQL schema, the OpenAPI document)."""
    http = http_process_count(settings)
    context = process_context()
    forks = http > 1 or bool(settings.dicom_port)
    if not forks or not isinstance(context, multiprocessing.context.ForkServerContext):
        return  # nothing to fork, or spawned processes (no fork server)
    if http > 1:
        context.set_forkserver_preload([*_PRELOAD, "server.preload_http"])
    multiprocessing.forkserver.ensure_running()


@functools.cache
def _lifeline_pipe() -> tuple[Connection, Connection]:
    return process_context().Pipe(duplex=False)


def lifeline() -> Connection:
    """What a process this server starts is given to know when the server is gone, however it
    ends (kill -9 too): the reading end of a pipe whose writing end only the server holds. It
    reads as ended then. (Not the parent process: a fork server's children keep it alive.)"""
    return _lifeline_pipe()[0]


def server_gone(line: Connection, wait_s: float | None = 0.0) -> bool:
    """Whether the server is gone; waits up to `wait_s` (None: until it is)."""
    return line.poll(wait_s)


def listen_on(family: int, address: tuple[str, int]) -> socket.socket:
    """A listening socket (SO_REUSEADDR: a restart binds while the last run's connections
    linger in TIME_WAIT)."""
    listening = socket.socket(family)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(address)
        listening.listen(1024)
    except OSError:
        listening.close()
        raise
    return listening


class ServingProcesses:
    """`count` processes running `target(*args(n), ready)`, n = 0..count-1; each sets `ready`
    once it serves, and stops cleanly on SIGTERM (Ctrl-C is left to the server, which stops
    them). One that dies is replaced; `stopping` (set on SIGTERM to the server, or by stop())
    ends every wait."""

    def __init__(
        self,
        door: str,
        target: Callable[..., None],
        args: Callable[[int], tuple[Any, ...]],
        count: int,
        stopping: threading.Event,
    ) -> None:
        self._door = door
        self._target = target
        self._args = args
        self._count = count
        self._stopping = stopping
        self._context = process_context()
        self._running: list[multiprocessing.process.BaseProcess] = []
        self._watch = threading.Thread(target=self._replace_dead, name=f"kerma-{door}-watch",
                                       daemon=True)  # fmt: skip

    def start(self) -> None:
        """Start them all and wait until each serves; RuntimeError if one could not."""
        started = [self._spawn(n) for n in range(self._count)]
        self._running = [process for process, _ in started]  # stop() stops them, ready or not
        pids = ",".join(str(p.pid) for p in self._running)
        log_event(log, f"{self._door}-processes-starting", pids=pids)
        for process, ready in started:
            if not self._serving(process, ready):
                raise RuntimeError(
                    f"{self._door} process {process.pid} did not start (see the log above)"
                )
        self._watch.start()

    def _replace_dead(self) -> None:
        """Every second until stopping: a process that died (killed, out of memory) is
        replaced."""
        while not self._stopping.wait(1.0):
            self._replace_once()

    def _replace_once(self) -> None:
        for n, process in enumerate(self._running):
            if not process.is_alive():
                log_event(log, f"{self._door}-process-died", pid=process.pid,
                          exitcode=process.exitcode)  # fmt: skip
                replacement, ready = self._spawn(n)
                self._running[n] = replacement
                self._serving(replacement, ready)  # if not, the next round replaces it again

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM to each: what is in flight finishes; then they exit (killed after the bound)."""
        self._stopping.set()
        if self._watch.is_alive():  # no replacement started from now on
            self._watch.join(_START_S)
        for process in self._running:
            process.terminate()
        deadline = time.monotonic() + timeout_s
        for process in self._running:
            process.join(max(0.1, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()

    def _serving(self, process: multiprocessing.process.BaseProcess, ready: Any) -> bool:
        """Wait until it serves (True), or the server is stopping (SIGTERM meanwhile: True);
        False if it ended or took too long (one killed at start never says it is ready)."""
        deadline = time.monotonic() + _START_S
        while not ready.wait(0.2) and not self._stopping.is_set():
            if not process.is_alive() or time.monotonic() > deadline:
                return False
        return True

    def _spawn(self, n: int) -> tuple[multiprocessing.process.BaseProcess, Any]:
        ready = self._context.Event()
        process = self._context.Process(
            target=_child, name=f"kerma-{self._door}",
            args=(self._target, lifeline(), *self._args(n), ready),
        )  # fmt: skip
        process.start()
        return process, ready


def _child(target: Callable[..., None], line: Connection, *args: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the server, which stops us
    threading.Thread(target=_end_with, args=(line,), name="kerma-server-watch",
                     daemon=True).start()  # fmt: skip
    target(*args)


def _end_with(line: Connection) -> None:
    """SIGTERM to this process once the server that started it is gone (killed: nobody else
    would stop it, and it would go on answering on the port beside the next server)."""
    server_gone(line, None)
    os.kill(os.getpid(), signal.SIGTERM)
