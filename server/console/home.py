"""The home page: what a physicist looks at first each morning. Examinations per modality
this week and this month, alerts waiting for review, standard procedures whose median is above
a DRL, devices that stopped sending, and the objects that could not be read lately."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, g, render_template

from server.alerts.review import SEVERITY_ORDER, work_list
from server.api.http import statistics
from server.config import Settings
from server.ingest.quarantine import Quarantine
from server.mappings import monitoring_table
from server.stats.service import Query

bp = Blueprint("home", __name__)
_RECENT_ERRORS = 5


@bp.get("/")
def home() -> str:
    settings: Settings = current_app.config["KERMA_SETTINGS"]
    now = datetime.now(ZoneInfo(settings.timezone))
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    week, month = midnight - timedelta(days=now.weekday()), midnight.replace(day=1)
    stats = statistics()
    everything = Query("dlp_mgy_cm", devices=g.access.devices or ())
    per_week = stats.counts(replace(everything, since=week.timestamp()), "modality")
    per_month = stats.counts(replace(everything, since=month.timestamp()), "modality")
    table = monitoring_table()
    medians = replace(everything, since=(now - timedelta(days=table.median_days)).timestamp())
    silent_since = (now - timedelta(days=table.silent_days)).timestamp()
    devices = stats.devices(replace(everything, since=0.0, until=math.inf))
    silent = [
        d
        for d in devices
        if d["last"] and datetime.fromisoformat(d["last"]).timestamp() < silent_since
    ]
    may_see_alerts = g.access.role.can("read", "DetectedIssue")  # not the authority's
    waiting = work_list(current_app.extensions["kerma.fhir"], g.access) if may_see_alerts else []
    errors = sorted(Quarantine(settings.quarantine_dir).items(), key=lambda q: -q.received)
    return render_template(
        "console/home.html",
        modalities=sorted(per_month, key=lambda m: -per_month[m]),
        per_week=per_week,
        per_month=per_month,
        waiting=waiting,
        by_severity=sorted(
            Counter(a.severity for a in waiting).items(), key=lambda c: SEVERITY_ORDER.get(c[0], 3)
        ),
        oldest=min((a.identified for a in waiting), default=""),
        above=stats.above_levels(medians),
        median_days=table.median_days,
        silent=silent,
        silent_days=table.silent_days,
        errors=errors[:_RECENT_ERRORS],
        error_count=len(errors),
        may_see_errors=g.access.devices is None,
        may_see_alerts=may_see_alerts,
    )
