"""Empties the spool into the store, oldest object first.

A spooled file is deleted only after its report is committed (or it went to quarantine), so a
crash at any point leaves it in the spool, and the next start processes it. While the store is
unreachable the worker waits and retries; an object that fails for another reason three times
goes to quarantine with the error, so one bad object cannot block the others.

`kerma serve` runs the worker in its own process: parsing and storing would otherwise share
the interpreter lock with the DICOM listener and halve the rate at which it can acknowledge
(measured: 195 -> 105 CT RDSRs/s on one association). One worker at a time holds the spool's
lock, so a worker orphaned by a killed server cannot race its successor.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from server.config import Settings
from server.dicom.spool import Spool
from server.files import try_lock
from server.ingest.pipeline import Ingestor
from server.logs import configure, log_event
from server.processes import lifeline, process_context, server_gone

log = logging.getLogger("kerma.spool")
_ATTEMPTS = 3
_IDLE_SECONDS = 1.0  # look at the spool (and for a dead parent) even without a wake-up call
_STORE_DOWN_SECONDS = 2.0
_RESPAWN_PAUSE_S = 2.0  # a child that dies at start (a broken store) is not respawned in a loop


class _Event(Protocol):
    def set(self) -> None: ...
    def clear(self) -> None: ...
    def is_set(self) -> bool: ...
    def wait(self, timeout: float | None = None) -> bool: ...


class SpoolWorker:
    def __init__(
        self,
        spool: Spool,
        ingestor: Ingestor,
        wake: _Event | None = None,
        stopping: _Event | None = None,
    ) -> None:
        self._spool = spool
        self._ingestor = ingestor
        self._wake = wake or threading.Event()
        self._stopping = stopping or threading.Event()
        self._failures: dict[Path, int] = {}
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Run in a background thread of this process."""
        self._thread = threading.Thread(target=self.run, name="kerma-spool", daemon=True)
        self._thread.start()

    def notify(self) -> None:
        """Something new is in the spool."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the object in hand and return; the rest waits in the spool for the next start."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self, stop_when: Callable[[], bool] = lambda: False) -> None:
        """Process the spool until stopped (or `stop_when()`), holding the spool's lock."""

        def stopping() -> bool:
            return self._stopping.is_set() or stop_when()

        with open(self._spool.folder / ".lock", "a") as lock:
            while not stopping() and not try_lock(lock):
                # another worker (an orphan finishing) has the spool
                self._stopping.wait(_IDLE_SECONDS)
            while not stopping():
                self._wake.clear()
                self.drain(stopping)
                self._wake.wait(_IDLE_SECONDS)

    def drain_unless_busy(self) -> int | None:
        """Drain now, unless another worker has the spool (None: that one stores it all)."""
        with open(self._spool.folder / ".lock", "a") as lock:
            return self.drain() if try_lock(lock) else None

    def drain(self, stopping: Callable[[], bool] = lambda: False) -> int:
        """Process everything spooled now; returns how many objects left the spool."""
        done = 0
        for path in self._spool.pending():
            if stopping():
                break
            if self._process(path):
                done += 1
            elif not self._ingestor.store_answers():
                self._stopping.wait(_STORE_DOWN_SECONDS)
                break
        return done

    def _process(self, path: Path) -> bool:
        try:
            self._ingestor.ingest_spooled(path)
        except FileNotFoundError:  # gone since it was listed: processed already
            return True
        except Exception as e:  # the store, or a reader bug: keep the object, decide below
            return self._failed(path, e)
        self._spool.done(path)
        self._failures.pop(path, None)
        return True

    def _failed(self, path: Path, error: Exception) -> bool:
        if not self._ingestor.store_answers():
            log_event(log, "store-unavailable", object=path.name, error=type(error).__name__)
            return False
        attempts = self._failures.get(path, 0) + 1
        self._failures[path] = attempts
        # the type only: a message may quote the object's content, and logs hold no patient data
        log_event(
            log, "processing-failed", object=path.name, error=type(error).__name__, attempt=attempts
        )
        if attempts < _ATTEMPTS:
            return False
        reason = f"processing failed: {type(error).__name__}: {error}"
        self._ingestor.quarantine.put(path.read_bytes(), path.name, reason)
        self._spool.done(path)
        self._failures.pop(path)
        return True


class ProcessFlag:
    """A flag one process sets and another waits on, over a counting semaphore.

    Setting it never waits for the other side: a multiprocessing Event's set() waits until
    every process waiting on it has woken, so a spool worker that died while waiting (killed,
    out of memory) made the listener's next C-STORE hang for good. Only one process reads it.
    """

    def __init__(self, context: Any) -> None:
        self._semaphore = context.Semaphore(0)
        self._seen = False  # of the reading process: a count taken is remembered

    def set(self) -> None:
        self._semaphore.release()

    def is_set(self) -> bool:
        self._seen = self._seen or self._semaphore.acquire(False)
        return self._seen

    def clear(self) -> None:
        self._seen = False
        while self._semaphore.acquire(False):
            pass

    def wait(self, timeout: float | None = None) -> bool:
        self._seen = self.is_set() or self._semaphore.acquire(True, timeout)
        return self._seen


class SpoolProcess:
    """A SpoolWorker in a child process, with its own store connection; same notify/stop.

    A child that dies is replaced (after a pause, should it die at once again): what it held
    stays in the spool and the next one takes it.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._context = process_context()
        self.wake = ProcessFlag(self._context)  # set by this process and the DICOM listener's
        self._stopping = ProcessFlag(self._context)
        self._stopped = threading.Event()  # this side's: no more replacements
        self._lock = threading.Lock()
        self._process: multiprocessing.process.BaseProcess | None = None

    def start(self) -> None:
        self._process = self._spawn()
        threading.Thread(target=self._replace_when_dead, name="kerma-spool-watch",
                         daemon=True).start()  # fmt: skip

    def notify(self) -> None:
        self.wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """The child finishes the object in hand; killed after `timeout`."""
        with self._lock:
            self._stopped.set()
            process = self._process
        self._stopping.set()
        self.wake.set()
        if process is None:
            return
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join(5.0)

    def _spawn(self) -> multiprocessing.process.BaseProcess:
        process = self._context.Process(
            target=_run_child,
            args=(self._settings, lifeline(), self.wake, self._stopping),
            name="kerma-spool",
            daemon=True,
        )
        process.start()
        return process

    def _replace_when_dead(self) -> None:
        while True:
            process = self._process
            assert process is not None
            wait([process.sentinel])  # (the one who stops it reaps it)
            if self._stopped.wait(_RESPAWN_PAUSE_S):
                return
            with self._lock:
                if self._stopped.is_set():
                    return
                process.join()
                log_event(log, "spool-worker-died", pid=process.pid, exitcode=process.exitcode)
                self._process = self._spawn()


def _run_child(
    settings: Settings, line: Connection, wake: ProcessFlag, stopping: ProcessFlag
) -> None:
    from server.ingest import build_ingestor
    from server.store import open_store

    configure(settings.log_level)

    # SIGTERM (from the server, or from systemd to every process of the service): finish the
    # object in hand, then stop; Ctrl-C reaches the server too, which stops us so
    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()
        wake.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # acknowledging senders comes first; storing may lag behind while they send
    os.nice(10)
    store = open_store(settings)
    spool = Spool(settings.spool_dir)
    worker = SpoolWorker(spool, build_ingestor(store, settings), wake, stopping)
    try:
        worker.run(stop_when=lambda: server_gone(line))  # the server was killed
    finally:
        store.close()
