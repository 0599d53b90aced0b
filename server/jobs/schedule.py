"""`kerma serve`'s clock: at KERMA_DAILY_AT (local time) it submits the daily run as a job
(a Task "daily"), which an RQ worker or a thread of `kerma serve` runs."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from server.fhir.service import FhirService
from server.jobs import tasks
from server.jobs.daily import next_run
from server.jobs.queue import Jobs
from server.periodic import Periodic


class DailyJobs(Periodic):
    def __init__(self, service: FhirService, jobs: Jobs, daily_at: str) -> None:
        next_run(datetime.now(), daily_at)  # a bad KERMA_DAILY_AT fails at start
        super().__init__("daily")
        self._service = service
        self._jobs = jobs
        self._daily_at = daily_at

    def wait_s(self) -> float:
        now = datetime.now().astimezone()
        return (next_run(now, self._daily_at) - now).total_seconds()

    def tick(self) -> None:
        """Submit what is due today, once however many kerma serve processes run."""
        today = datetime.now().astimezone().date()
        due: list[tuple[str, str, str, dict[str, str]]] = [
            (f"daily/{today}", "daily", "the daily run", {})
        ]
        inputs = monthly_report(today)
        if inputs:  # the month's department report, mailed to its subscribers
            due.append(
                (f"report/{inputs['from']}", "report-department", "the monthly report", inputs)
            )
        for key, code, description, job_inputs in due:
            task, created = tasks.create_once(self._service, key, code, description, job_inputs)
            if created:
                self._jobs.submit(task["id"])


def monthly_report(today: date) -> dict[str, str] | None:
    """On the first of a month, the period of the month before.

    >>> monthly_report(date(2026, 12, 1))
    {'from': '2026-11-01', 'to': '2026-12-01'}
    >>> monthly_report(date(2027, 1, 1))
    {'from': '2026-12-01', 'to': '2027-01-01'}
    >>> monthly_report(date(2026, 12, 2)) is None
    True
    """
    if today.day != 1:
        return None
    last_month = (today - timedelta(days=1)).replace(day=1)
    return {"from": last_month.isoformat(), "to": today.isoformat()}
