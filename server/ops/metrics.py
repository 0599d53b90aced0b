"""/metrics: the counters of server/metrics.py (of every Kerma process, in multiprocess mode)
and gauges read when scraped: spool depth and age, quarantine, job queue and workers."""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import REGISTRY, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from server.config import Settings
from server.ops.health import queue_state, spool_state

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


def exposition(settings: Settings) -> bytes:
    """The text format of every metric, now."""
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROCESS_DIR):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Process())
    registry.register(_State(settings))
    return generate_latest(registry)


class _Process(Collector):
    """This process's counters (the default registry), when processes do not share files."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


class _State(Collector):
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def collect(self) -> Iterator[Metric]:
        spool = spool_state(self._settings)
        yield GaugeMetricFamily("kerma_spool_depth", "Received objects waiting in the spool",
                                value=spool.depth)  # fmt: skip
        yield GaugeMetricFamily("kerma_spool_oldest_age_seconds",
                                "How long the oldest object in the spool has waited",
                                value=spool.oldest_age_s)  # fmt: skip
        yield GaugeMetricFamily(
            "kerma_quarantined", "Objects in quarantine", value=spool.quarantined
        )
        if self._settings.redis_url:
            try:
                queue = queue_state(self._settings.redis_url)
            except Exception:  # Redis down: /health/ready says so; no made-up numbers here
                return
            yield GaugeMetricFamily("kerma_job_queue_depth", "Jobs waiting on RQ",
                                    value=queue.depth)  # fmt: skip
            yield GaugeMetricFamily("kerma_job_workers", "kerma worker processes registered",
                                    value=queue.workers)  # fmt: skip
