"""HTTP on every core: waitress in processes of its own (server/processes.py), all on the
socket `kerma serve` bound, each taking its share of the connections (server/fair_accept.py).
Each has its own app, store connection (SQLite WAL: readers in parallel, writers take turns)
and statistics copy."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from types import FrameType
from typing import Any

from server.app import create_app
from server.config import Settings
from server.fair_accept import Shares, fair_server
from server.logs import configure, log_event
from server.processes import ServingProcesses, process_context

log = logging.getLogger("kerma.http")


def http_processes(settings: Settings, listening: socket.socket, count: int,
                   stopping: threading.Event) -> ServingProcesses:  # fmt: skip
    """Each on the bound socket, accepting its share."""
    shares = Shares(process_context(), count)

    def args(n: int) -> tuple[Any, ...]:
        return settings, listening, shares.starting(n), n

    return ServingProcesses("http", _serve_http, args, count, stopping)


def _serve_http(settings: Settings, listening: socket.socket, shares: Shares, number: int,
                ready: Any) -> None:  # fmt: skip
    configure(settings.log_level, settings.log_format)
    signal.signal(signal.SIGTERM, _exit)
    app = create_app(settings)
    threading.Thread(target=warm_up, args=(app, settings), daemon=True).start()
    server = fair_server(app, listening, settings.http_threads, shares, number)
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
