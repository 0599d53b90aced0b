"""The listeners `kerma serve` runs beside HTTP: the DICOM SCP and the spool worker behind it,
and the HL7 MLLP listener."""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import partial
from typing import Any

import orjson
from pynetdicom.transport import ThreadedAssociationServer

from server.config import Settings
from server.dicom import mpps_scp
from server.dicom.access import CallingAeTitles
from server.dicom.mpps_scp import MppsSteps
from server.dicom.pacs import Pacs
from server.dicom.scp import ScpConfig, start_scp
from server.dicom.spool import Spool
from server.fhir import FhirService
from server.fhir.mapping.codes import AE_TITLE_SYSTEM
from server.hl7.listener import Hl7Listener
from server.ingest import build_ingestor
from server.ingest.hl7 import build_handler
from server.ingest.pull import PullState, matching_studies, pacs_config, pull
from server.ingest.spool_worker import ProcessFlag, SpoolProcess, SpoolWorker
from server.logs import configure, log_event
from server.periodic import Periodic
from server.ports import bind_problem, family_of
from server.processes import ServingProcesses
from server.site import build_service
from server.store import open_store
from server.store.port import Store

log = logging.getLogger("kerma.dicom")
_FINISH_S = 20.0  # for the associations in progress when a listener is stopped


@dataclass
class DicomListener:
    port: int
    worker: SpoolWorker | SpoolProcess
    spool: Spool
    # accept no more associations, let those in progress finish within the bound (seconds)
    stop_listening: Callable[[float], None]

    def stop(self, timeout_s: float = _FINISH_S) -> None:
        """Stop listening, then stop the spool worker after the object in hand; what is
        spooled waits on disk."""
        deadline = time.monotonic() + timeout_s
        self.stop_listening(timeout_s)
        self.worker.stop(max(1.0, deadline - time.monotonic()))


def start_dicom(
    settings: Settings, store: Store, worker_process: bool = False, processes: int = 1
) -> DicomListener:
    """Process what an earlier run left in the spool, then listen on KERMA_DICOM_PORT.

    `worker_process` stores what arrives from a child process (as `kerma serve` does), else
    from a thread of this one; `processes` > 1 (with `worker_process`) listens in that many
    processes of their own on the one port, else in threads of this one.
    """
    spool = Spool(settings.spool_dir)
    spool.discard_partial()
    worker: SpoolWorker | SpoolProcess = (
        SpoolProcess(settings)
        if worker_process
        else SpoolWorker(spool, build_ingestor(store, settings))
    )
    if isinstance(worker, SpoolProcess) and processes > 1:
        port, stop_listening = _listen_in_processes(settings, worker.wake, processes)
    else:
        server = _listen(settings, store, spool, worker.notify, shared_port=False)
        port, stop_listening = int(server.server_address[1]), partial(_stop_scp, server)
    worker.start()  # its first pass takes what is left from the last run
    listener = DicomListener(port, worker, spool, stop_listening)
    log_event(
        log,
        "dicom-listening",
        ae_title=settings.ae_title,
        address=f"{settings.dicom_host}:{listener.port}",
        allowed_aes=settings.dicom_allowed_aes or "registered devices",
        processes=processes if worker_process else 1,
        spooled=len(spool.pending()),
    )
    return listener


def _listen(settings: Settings, store: Store, spool: Spool, received: Callable[[], None],
            shared_port: bool) -> ThreadedAssociationServer:  # fmt: skip
    service = build_service(store, settings)
    calling = CallingAeTitles(settings.dicom_allowed_aes, lambda: registered_ae_titles(service))
    config = ScpConfig(settings.ae_title, settings.dicom_host, settings.dicom_port,
                       settings.dicom_nice, shared_port)  # fmt: skip
    steps = MppsSteps(settings.data_dir / "mpps")
    try:
        return start_scp(
            config, spool, received, calling, mpps_scp.handlers(steps, spool, received)
        )
    except OSError as e:
        raise bind_problem(e, "KERMA_DICOM_PORT", settings.dicom_host, settings.dicom_port) from e


def _stop_scp(server: ThreadedAssociationServer, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    server.shutdown()
    for association in server.ae.active_associations:
        association.join(max(0.0, deadline - time.monotonic()))
    server.server_close()


def _listen_in_processes(
    settings: Settings, wake: ProcessFlag, count: int
) -> tuple[int, Callable[[float], None]]:
    """`count` listener processes on KERMA_DICOM_PORT (port 0: one the kernel chose), each
    waking the spool worker through `wake`, watched and replaced when one dies."""
    host = settings.dicom_host
    # bound, not listening: the port stays ours, gets no calls
    held = socket.socket(family_of(host))
    try:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        held.bind((host, settings.dicom_port))
    except OSError as e:
        held.close()
        raise bind_problem(e, "KERMA_DICOM_PORT", host, settings.dicom_port) from e
    port = int(held.getsockname()[1])
    stopping = threading.Event()
    processes = ServingProcesses("dicom", _serve_dicom,
                                 lambda n: (replace(settings, dicom_port=port), wake),
                                 count, stopping)  # fmt: skip
    processes.start()

    def stop_listening(timeout_s: float) -> None:
        processes.stop(timeout_s)
        held.close()

    return port, stop_listening


def _serve_dicom(settings: Settings, wake: ProcessFlag, ready: Any) -> None:
    """A listener process: until SIGTERM, then the associations in progress finish."""
    configure(settings.log_level, settings.log_format)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    store = open_store(settings)
    spool = Spool(settings.spool_dir)
    server = _listen(settings, store, spool, wake.set, shared_port=True)
    ready.set()
    stopping.wait()
    _stop_scp(server, _FINISH_S)
    store.close()


def start_hl7(settings: Settings, store: Store) -> Hl7Listener:
    """Apply what an earlier run kept but did not apply, then listen on KERMA_HL7_PORT."""
    handler = build_handler(store, settings)
    replayed = handler.replay()
    listener = Hl7Listener(
        handler.handle,
        settings.hl7_host,
        settings.hl7_port,
        settings.ae_title,
        settings.hl7_max_bytes,
        settings.hl7_timeout_seconds,
    )
    try:
        listener.start()
    except OSError as e:
        raise bind_problem(e, "KERMA_HL7_PORT", settings.hl7_host, settings.hl7_port) from e
    log_event(
        logging.getLogger("kerma.hl7"),
        "hl7-listening",
        address=f"{settings.hl7_host}:{listener.port}",
        replayed=replayed,
    )
    return listener


def registered_ae_titles(service: FhirService) -> set[str]:
    """AE titles of Device resources registered over the API and not inactive."""
    found = service.search("Device", [("identifier", f"{AE_TITLE_SYSTEM}|"), ("_count", "1000")])
    titles: set[str] = set()
    for stored in found.matches:
        device = orjson.loads(stored.body or b"{}")
        if device.get("status") == "inactive":
            continue
        titles.update(
            i["value"].strip()
            for i in device.get("identifier", [])
            if i.get("system") == AE_TITLE_SYSTEM and i.get("value")
        )
    return titles


class PacsSchedule(Periodic):
    """`kerma serve`'s periodic pull: every KERMA_PACS_PULL_MINUTES, the last
    KERMA_PACS_PULL_DAYS days; what it retrieves goes through the spool like any C-STORE."""

    def __init__(self, settings: Settings, store: Store, received: Callable[[], None]) -> None:
        super().__init__("pacs-pull")
        self._settings = settings
        self._store = store
        self._received = received

    def wait_s(self) -> float:
        return float(self._settings.pacs_pull_minutes * 60)

    def tick(self) -> None:
        self.pull_once()

    def pull_once(self) -> Counter[str]:
        settings = self._settings
        since = date.today() - timedelta(days=settings.pacs_pull_days)
        state = PullState(settings.data_dir / "pacs" / "pulled.json")
        service = build_service(self._store, settings)
        tally: Counter[str] = Counter()
        spool = Spool(settings.spool_dir)
        with Pacs(pacs_config(settings), spool, self._received) as pacs:
            studies = matching_studies(pacs, since, None, ())
            for outcome in pull(pacs, studies, state, service):
                tally[outcome.status] += 1
                tally["objects"] += outcome.objects
        log_event(log, "pacs-pulled", since=since, **tally)
        return tally
