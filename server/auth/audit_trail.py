"""Writing AuditEvents without making every read a write transaction of its own.

Every read of patient data leaves an AuditEvent. Written one per request, they were the
ceiling of the whole HTTP server: each is a store transaction, SQLite takes one writer at a
time, and with several HTTP threads or processes reading, requests queued behind one another's
audit writes (measured: 330 searches/s whatever the clients or cores, p95 287-437 ms with
8 clients). A request's event is queued and a thread of the process writes what is queued
every 0.2 s in one transaction; a request that reads the trail writes what is queued first, so
it sees every earlier request's event; `stop` ends the thread and writes the rest, before the
store closes (a write racing the close crashed the process). What a kill -9 can lose: the
last 0.2 s of events of that process.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from server.fhir.service import FhirService
from server.logs import log_event

log = logging.getLogger("kerma.audit")


WRITE_EVERY_S = 0.2


class AuditTrail:
    def __init__(self, service: FhirService) -> None:
        self._service = service
        self._queued: list[dict[str, Any]] = []
        self._queue_lock = threading.Lock()
        self._write_lock = threading.Lock()  # one batch at a time
        self._writer: threading.Thread | None = None
        self._stopping = threading.Event()

    def add(self, event: dict[str, Any]) -> None:
        with self._queue_lock:
            self._queued.append(event)
            stopped = self._stopping.is_set()
            if not stopped and self._writer is None:
                self._writer = threading.Thread(target=self._write_every, daemon=True,
                                                name="kerma-audit")  # fmt: skip
                self._writer.start()
        if stopped:
            self.flush()

    def _write_every(self) -> None:
        while not self._stopping.wait(WRITE_EVERY_S):
            self.flush()

    def stop(self) -> None:
        """End the writing thread and write what is left; later events are written at once."""
        self._stopping.set()
        with self._queue_lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.join()
        self.flush()

    def flush(self) -> None:
        """Write what is queued, in one transaction; on failure it stays queued for the next."""
        with self._write_lock:
            with self._queue_lock:
                batch, self._queued = self._queued, []
            if not batch:
                return
            try:
                with self._service.store.transaction() as tx:
                    for event in batch:
                        self._service.create_in(tx, "AuditEvent", event, trusted=True)
            except Exception as e:  # the store is down: keep them, the next request retries
                with self._queue_lock:
                    self._queued[:0] = batch
                log_event(log, "audit-deferred", events=len(batch), error=type(e).__name__)
