"""`kerma serve`: bind every listener before saying anything is served, say what runs with
which configuration, and on SIGTERM finish what is in flight and exit 0 within a bound."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from server.app import create_app
from server.config import Settings
from server.files import try_lock
from server.http_processes import http_processes, warm_up
from server.jobs.schedule import DailyJobs
from server.logs import log_event
from server.network import PacsSchedule, start_dicom, start_hl7
from server.notify.delivery import Dispatcher
from server.ops.backup import SERVE_LOCK
from server.ops.health import queue_state, spool_state
from server.outbound.senders import senders
from server.ports import ListenError, bind_problem, family_of
from server.processes import http_process_count, listen_on, start_fork_server
from server.site import build_service
from server.site.choices import configured, stored
from server.store.port import Store
from server.waitress_server import Server, server_on

log = logging.getLogger("kerma")
STOP_BOUND_S = 25.0  # SIGTERM to exit; systemd's TimeoutStopSec (deploy/) leaves room above it


def serve(settings: Settings) -> int:
    """Run until SIGTERM or Ctrl-C; 0 after a clean stop, 2 when a port cannot be bound or
    another kerma serve runs on the same data folder."""
    with open(settings.data_dir / SERVE_LOCK, "a") as lock:
        if not try_lock(lock):
            log.error(
                "another kerma serve runs on KERMA_DATA_DIR=%s; stop it first", settings.data_dir
            )
            return 2
        return _serve(settings)


def _serve(settings: Settings) -> int:
    app = create_app(settings)
    store: Store = app.extensions["kerma.store"]
    stops: list[Callable[[], None]] = []
    received: Callable[[], None] | None = None  # wakes the spool worker
    try:
        processes = http_process_count(settings)
        start_fork_server(settings)  # where kerma serve's command has not started it yet
        listening = _listen(settings)
        stops.append(listening.close)
        if settings.dicom_port:
            listeners = settings.dicom_processes or os.cpu_count() or 1
            dicom = start_dicom(settings, store, worker_process=True, processes=listeners)
            stops.append(dicom.stop)
            received = dicom.worker.notify
        if settings.hl7_port:
            stops.append(start_hl7(settings, store).stop)
    except ListenError as e:
        log.error("%s", e)
        _stop_all(stops, store)
        return 2
    address = f"{settings.http_host}:{listening.getsockname()[1]}"
    log_event(log, "http-listening", address=address, processes=processes,
              threads=settings.http_threads)  # fmt: skip
    stops.extend(_background(app, settings, store, received))
    _log_configuration(settings, store)
    try:
        if processes == 1:
            _serve_here(app, settings, listening, address, stops)
        else:
            _serve_in_processes(settings, listening, processes, address, stops)
    finally:
        started = time.monotonic()
        _stop_all(stops, store)
        log_event(log, "stopped", seconds=round(time.monotonic() - started, 1),
                  spooled=spool_state(settings).depth)  # fmt: skip
    return 0


def _serve_here(app: Any, settings: Settings, listening: socket.socket, address: str,
                stops: list[Callable[[], None]]) -> None:  # fmt: skip
    """HTTP in this process (KERMA_HTTP_PROCESSES=1), until SIGTERM or Ctrl-C."""
    http = server_on(app, listening, settings.http_threads)
    stops.append(lambda: _close_http(http))
    stops.append(app.extensions["kerma.audit"].stop)  # after HTTP: what the last requests queued
    threading.Thread(target=warm_up, args=(app, settings), daemon=True).start()
    signal.signal(signal.SIGTERM, _exit_on_signal)
    log_event(log, "serving", http=address, data_dir=settings.data_dir)
    http.run()  # returns once SIGTERM or Ctrl-C stopped it, after requests in flight end


def _serve_in_processes(settings: Settings, listening: socket.socket, count: int, address: str,
                        stops: list[Callable[[], None]]) -> None:  # fmt: skip
    """HTTP in `count` processes; this one keeps the listeners and jobs and watches them."""
    stopping = threading.Event()
    processes = http_processes(settings, listening, count, stopping)
    stops.append(processes.stop)
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.set())
    processes.start()
    log_event(log, "serving", http=address, data_dir=settings.data_dir)
    stopping.wait()  # they replace one that dies meanwhile


def _listen(settings: Settings) -> socket.socket:
    """The HTTP port, bound and listening, before anything says it serves (the HTTP processes
    all accept on it)."""
    try:
        return listen_on(family_of(settings.http_host), (settings.http_host, settings.http_port))
    except OSError as e:
        raise bind_problem(e, "KERMA_HTTP_PORT", settings.http_host, settings.http_port) from e


def _close_http(http: Server) -> None:
    http.task_dispatcher.shutdown(timeout=STOP_BOUND_S / 5)
    http.close()


def _background(
    app: Any, settings: Settings, store: Store, received: Callable[[], None] | None
) -> list[Callable[[], None]]:
    """Notification and outbound delivery, the daily run and the PACS pull; their stops."""
    service = build_service(store, settings)
    dispatcher = Dispatcher.from_settings(service, settings, senders(service, settings))
    daily = DailyJobs(
        build_service(store, settings), app.extensions["kerma.jobs"], settings.daily_at
    )
    periodic: list[Dispatcher | DailyJobs | PacsSchedule] = [dispatcher, daily]
    if settings.pacs_ae_title and settings.pacs_pull_minutes > 0 and received is not None:
        # what it retrieves is stored by the DICOM listener's spool worker
        periodic.append(PacsSchedule(settings, store, received))
    for job in periodic:
        job.start()
    return [lambda job=job: job.stop(STOP_BOUND_S / 5) for job in periodic]  # type: ignore[misc]


def _log_configuration(settings: Settings, store: Store) -> None:
    """One line an operator can check against what they meant to configure."""
    choices = stored(build_service(store, settings))
    source = "console" if choices is not None else "settings"
    choices = choices or configured(settings)
    log_event(
        log,
        "configuration",
        store=store.name,
        jobs=_jobs(settings),
        drl_sets=",".join(sorted(choices.drl_sets)) or "none",
        alert_rules=",".join(choices.alert_sets) or "none",
        chosen_in=source,
        smtp=f"{settings.smtp_host}:{settings.smtp_port}" if settings.smtp_host else "off",
        timezone=settings.timezone,
        daily_at=settings.daily_at,
    )


def _jobs(settings: Settings) -> str:
    if not settings.redis_url:
        return "in-process"
    try:
        state = queue_state(settings.redis_url)
    except Exception as e:  # say it now: readiness stays red until Redis answers
        log.warning("redis-unreachable error=%s: jobs wait until Redis answers", type(e).__name__)
        return "redis (unreachable)"
    if state.workers == 0:
        log.warning("no-worker: start `kerma worker` with the same settings, or jobs wait")
    return f"redis ({state.workers} workers, {state.depth} queued)"


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)  # waitress's loop ends on it and lets requests in flight finish


def _stop_all(stops: list[Callable[[], None]], store: Store) -> None:
    for stop in reversed(stops):
        try:
            stop()
        except Exception:  # one part failing to stop must not keep the others running
            log.exception("stop-failed")
    store.close()
