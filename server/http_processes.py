"""HTTP on every core: waitress in several processes on one port. A Python process runs its
code on one core at a time (the interpreter lock), so threads alone left the second core idle
however many clients came. Each process has its own app, store connection (SQLite WAL:
readers in parallel, writers take turns) and statistics copy.

Each process listens on a socket of its own (SO_REUSEPORT), the first on the one `kerma serve`
bound: the kernel then spreads new connections evenly over them. Taking turns at accept() on
one shared socket, the process awake first took nearly all (47, 45 and 31 of 50 clients in
three tries), and its clients waited while the other process idled."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from types import FrameType
from typing import Any

import waitress

from server.app import create_app
from server.config import Settings
from server.logs import configure, log_event

log = logging.getLogger("kerma.http")
_START_S = 120.0  # spawned processes import everything: seconds each on a busy machine
REUSE_PORT = hasattr(socket, "SO_REUSEPORT")  # Linux, BSD; elsewhere all share the first socket


def listen_on(family: int, address: tuple[str, int], reuse_port: bool) -> socket.socket:
    """A listening socket; with `reuse_port`, others with the option may listen on the port."""
    listening = socket.socket(family)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listening.bind(address)
        listening.listen(1024)
    except OSError:
        listening.close()
        raise
    return listening


class HttpProcesses:
    def __init__(self, settings: Settings, listening: socket.socket, count: int,
                 stopping: threading.Event) -> None:  # fmt: skip
        self._settings = settings
        self._stopping = stopping
        self._socket = listening
        self._count = count
        self._context = multiprocessing.get_context("spawn")
        self._running: list[multiprocessing.process.BaseProcess] = []

    def start(self) -> None:
        """Start them all and wait until each serves; RuntimeError if one could not."""
        started = [self._spawn(n) for n in range(self._count)]
        self._running = [process for process, _ in started]  # stop() stops them, ready or not
        log_event(log, "http-processes-starting", pids=",".join(str(p.pid) for p in self._running))
        for process, ready in started:
            if not self._serving(process, ready):
                raise RuntimeError(f"HTTP process {process.pid} did not start (see the log above)")

    def replace_dead(self) -> None:
        """An HTTP process that died (killed, out of memory) is replaced."""
        for n, process in enumerate(self._running):
            if not process.is_alive():
                log_event(log, "http-process-died", pid=process.pid, exitcode=process.exitcode)
                replacement, ready = self._spawn(n)
                self._running[n] = replacement
                self._serving(replacement, ready)  # if not, the next round replaces it again

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM to each: requests in flight finish; then they exit (killed after the bound)."""
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
        """The n-th process: the first on the bound socket, the others on sockets of their own."""
        ready = self._context.Event()
        shared = self._socket if n == 0 or not REUSE_PORT else None
        where = (self._socket.family, self._socket.getsockname()[:2])
        process = self._context.Process(target=_serve_http, name="kerma-http",
                                        args=(self._settings, shared, where, ready))  # fmt: skip
        process.start()
        return process, ready


def _serve_http(settings: Settings, shared: socket.socket | None,
                where: tuple[int, tuple[str, int]], ready: Any) -> None:  # fmt: skip
    configure(settings.log_level, settings.log_format)
    listening = shared if shared is not None else listen_on(*where, reuse_port=True)
    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops us
    app = create_app(settings)
    threading.Thread(target=warm_up, args=(app, settings), daemon=True).start()
    server = waitress.create_server(app, sockets=[listening], threads=settings.http_threads,
                                    ident="kerma")  # fmt: skip
    log_event(log, "http-process-ready", pid=os.getpid(), threads=settings.http_threads)
    ready.set()
    server.run()
    app.extensions["kerma.audit"].stop()  # what the last requests queued


def warm_up(app: Any, settings: Settings) -> None:
    """The first statistics query reads the facts into memory, the first GraphQL query builds
    the schema (seconds each): both before anyone asks."""
    from server.graphql.schema import system_schema

    for facts in app.extensions["kerma.facts"].values():
        facts.current()
    system_schema(settings.graphql_max_depth, settings.graphql_max_cost)


def _exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)  # waitress's loop ends on it and lets requests in flight finish
