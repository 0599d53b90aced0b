"""`kerma serve`'s clock: at KERMA_DAILY_AT (local time) it submits the daily run as a job
(a Task "daily"), which an RQ worker or a thread of `kerma serve` runs."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from server.fhir.service import FhirService
from server.jobs import tasks
from server.jobs.daily import next_run
from server.jobs.queue import Jobs
from server.logs import log_event

log = logging.getLogger("kerma.jobs")


class DailyJobs:
    def __init__(self, service: FhirService, jobs: Jobs, daily_at: str) -> None:
        next_run(datetime.now(), daily_at)  # a bad KERMA_DAILY_AT fails at start
        self._service = service
        self._jobs = jobs
        self._daily_at = daily_at
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kerma-daily", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(60)

    def _run(self) -> None:
        while True:
            now = datetime.now().astimezone()
            if self._stopping.wait((next_run(now, self._daily_at) - now).total_seconds()):
                return
            try:
                task = tasks.create(self._service, "daily", "the daily run")
                self._jobs.submit(task["id"])
            except Exception as e:  # the store or Redis is away: the next day tries again
                log_event(log, "daily-run-not-submitted", error=type(e).__name__)
