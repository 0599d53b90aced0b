"""The daily run (a job `kerma serve` submits at KERMA_DAILY_AT, local time): the monitoring
over the dose facts (medians above DRLs, parameter drift) and the daily review lists of
digest Subscriptions. `kerma monitor` runs the same once."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from server.alerts.monitoring import run
from server.config import Settings
from server.logs import log_event
from server.mappings import monitoring_table
from server.notify.routing import queue_digests
from server.site import build_service, site_context
from server.site.tables import site_tables
from server.store.port import Store

log = logging.getLogger("kerma.jobs")


def run_daily(store: Store, settings: Settings, now: datetime) -> tuple[list[str], list[str]]:
    """(new DetectedIssues, queued digests)."""
    service = build_service(store, settings)
    ctx = site_tables(service, settings).context(site_context(settings))
    issues = run(service, ctx, monitoring_table(), now)
    digests = queue_digests(service, now.date())
    log_event(log, "daily-run", issues=len(issues), digests=len(digests))
    return issues, digests


def next_run(now: datetime, at: str) -> datetime:
    """The next time of day `at` ("HH:MM") after `now` (an aware local time).

    >>> next_run(datetime(2026, 11, 26, 7, 0), "06:30").isoformat()
    '2026-11-27T06:30:00'
    >>> next_run(datetime(2026, 11, 26, 6, 0), "06:30").isoformat()
    '2026-11-26T06:30:00'
    """
    hours, _, minutes = at.partition(":")
    today = now.replace(hour=int(hours), minute=int(minutes or 0), second=0, microsecond=0)
    return today if today > now else today + timedelta(days=1)
