"""Whether Kerma can do its work now (readiness), as /health/ready and /metrics report it.

Each check names a dependency, says whether it is usable and why not. Kerma is ready when the
store answers and the spool is writable, and, where they are configured, Redis answers with at
least one worker to run jobs and the SMTP server accepts connections.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.config import Settings
from server.dicom.spool import arrived, pending_in
from server.ingest.quarantine import Quarantine
from server.jobs.queue import QUEUE
from server.store.port import Store

_TIMEOUT_S = 2.0  # a dependency slower than this to answer counts as down


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    reason: str = ""  # why not, in words an operator can act on
    facts: dict[str, Any] = field(default_factory=dict)


def readiness(store: Store, settings: Settings) -> list[Check]:
    checks = [_store(store), _spool(settings)]
    if settings.redis_url:
        checks.append(_redis(settings.redis_url))
    if settings.smtp_host:
        checks.append(_smtp(settings.smtp_host, settings.smtp_port))
    return checks


@dataclass(frozen=True)
class SpoolState:
    depth: int
    oldest_age_s: float
    quarantined: int


def spool_state(settings: Settings) -> SpoolState:
    """Objects waiting in the spool, how long the oldest has waited, and how many are in
    quarantine."""
    pending = pending_in(settings.spool_dir)
    oldest = arrived(pending[0]) if pending else time.time()
    quarantined = len(Quarantine(settings.quarantine_dir).items())
    return SpoolState(len(pending), max(0.0, time.time() - oldest), quarantined)


@dataclass(frozen=True)
class QueueState:
    depth: int
    workers: int


def queue_state(redis_url: str) -> QueueState:
    """Jobs waiting on RQ and the workers registered; raises when Redis does not answer."""
    from redis import Redis
    from rq import Queue, Worker

    redis = Redis.from_url(redis_url, socket_timeout=_TIMEOUT_S, socket_connect_timeout=_TIMEOUT_S)
    return QueueState(len(Queue(QUEUE, connection=redis)), Worker.count(connection=redis))


def _store(store: Store) -> Check:
    try:
        store.ping()
    except Exception as e:  # whatever the driver raises: the store is not there
        return Check("store", False, f"{store.name} does not answer ({type(e).__name__})")
    return Check("store", True, facts={"kind": store.name})


def _spool(settings: Settings) -> Check:
    state = spool_state(settings)
    facts = {"depth": state.depth, "oldest_age_s": round(state.oldest_age_s, 1),
             "quarantined": state.quarantined}  # fmt: skip
    if not _writable(settings.spool_dir):
        return Check("spool", False, f"{settings.spool_dir} is not writable", facts)
    return Check("spool", True, facts=facts)


def _redis(redis_url: str) -> Check:
    try:
        state = queue_state(redis_url)
    except Exception as e:  # refused, timed out, auth: jobs cannot be queued
        return Check("redis", False, f"Redis does not answer ({type(e).__name__})")
    facts = {"queued": state.depth, "workers": state.workers}
    if state.workers == 0:
        return Check("redis", False, "no kerma worker is running: jobs wait", facts)
    return Check("redis", True, facts=facts)


def _smtp(host: str, port: int) -> Check:
    try:
        socket.create_connection((host, port), _TIMEOUT_S).close()
    except OSError as e:
        return Check("smtp", False, f"{host}:{port} refuses connections ({e.strerror or e})")
    return Check("smtp", True, facts={"server": f"{host}:{port}"})


def _writable(folder: Path) -> bool:
    """The folder, or where it will be made on first use, takes new files."""
    where = folder if folder.exists() else folder.parent
    return where.is_dir() and os.access(where, os.W_OK | os.X_OK)
