"""HTTP on every core: waitress in processes of its own (server/processes.py), the first on
the socket `kerma serve` bound, the others on sockets of their own on the same port. Each has
its own app, store connection (SQLite WAL: readers in parallel, writers take turns) and
statistics copy."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from types import FrameType
from typing import Any

import waitress

from server.app import create_app
from server.config import Settings
from server.logs import configure, log_event
from server.processes import REUSE_PORT, ServingProcesses, listen_on

log = logging.getLogger("kerma.http")


def http_processes(settings: Settings, listening: socket.socket, count: int,
                   stopping: threading.Event) -> ServingProcesses:  # fmt: skip
    """The first on the bound socket, the others on sockets of their own."""
    where = (listening.family, listening.getsockname()[:2])

    def args(n: int) -> tuple[Any, ...]:
        shared = listening if n == 0 or not REUSE_PORT else None
        return settings, shared, where

    return ServingProcesses("http", _serve_http, args, count, stopping)


def _serve_http(settings: Settings, shared: socket.socket | None,
                where: tuple[int, tuple[str, int]], ready: Any) -> None:  # fmt: skip
    configure(settings.log_level, settings.log_format)
    listening = shared if shared is not None else listen_on(*where, reuse_port=True)
    signal.signal(signal.SIGTERM, _exit)
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
