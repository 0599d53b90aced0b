"""Background jobs on a real Redis with a real `kerma worker` process, and in-process: the
same Task lifecycle (requested, in-progress, completed or failed), errors kept, retries."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from server.app import create_app
from server.config import Settings
from server.fhir import FhirService
from server.ingest import build_ingestor
from server.jobs import tasks
from server.jobs.queue import RqJobs
from server.mappings import classification_rules
from server.store.port import Store
from tests.conftest import Api
from tests.ingest.test_drl_checks import PHILIPS

# a database of its own per pytest-xdist worker (gw0: 15, gw1: 14...): the tests empty it and
# run a worker over the whole queue, so two of them must not share one
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
REDIS_URL = os.environ.get("KERMA_TEST_REDIS_URL", f"redis://127.0.0.1:6379/{15 - _WORKER % 15}")
KERMA = str(Path(sys.executable).parent / "kerma")


@pytest.fixture
def redis_url() -> str:
    """A real Redis (scripts/test starts one); the worker's database, emptied for each test."""
    from redis import Redis
    from redis.exceptions import ConnectionError as RedisDown

    client = Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    except RedisDown:
        pytest.fail(f"no Redis at {REDIS_URL}: start redis-server (scripts/test does)")
    return REDIS_URL


@pytest.fixture
def rq_api(settings: Settings, store: Store, redis_url: str, tokens: dict[str, str]) -> Api:
    app = create_app(replace(settings, redis_url=redis_url), store)
    client: FlaskClient = app.test_client()
    return Api(client, tokens["mpe"])


def _worker(settings: Settings, redis_url: str) -> subprocess.CompletedProcess[str]:
    """`kerma worker --burst` in its own process, on the test's store: runs what is queued."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERMA_")}
    env |= {"KERMA_DATA_DIR": str(settings.data_dir), "KERMA_REDIS_URL": redis_url}
    done = subprocess.run(
        [KERMA, "worker", "--burst"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done


def test_a_job_runs_on_an_rq_worker(
    rq_api: Api, store: Store, settings: Settings, redis_url: str
) -> None:
    build_ingestor(store, settings).ingest_file(PHILIPS)
    started = rq_api.post("/fhir/ImagingStudy/$reclassify", {})
    assert started.status_code == 202
    task = started.get_json()
    assert task["status"] == "requested"
    queue = RqJobs(redis_url).queue
    assert queue.count == 1  # waiting for a worker
    assert rq_api.get(f"/fhir/Task/{task['id']}").get_json()["status"] == "requested"
    _worker(settings, redis_url)
    done = rq_api.get(f"/fhir/Task/{task['id']}").get_json()
    assert done["status"] == "completed", done
    outputs = {o["type"]["text"]: o["valueInteger"] for o in done["output"]}
    assert outputs == {"unchanged": 1, "rulesVersion": classification_rules().version}
    assert done["businessStatus"]["text"] == "1 done"
    assert queue.count == 0


def test_a_failed_job_keeps_its_error_and_is_retried(
    rq_api: Api, service: FhirService, settings: Settings, redis_url: str, as_role: Any
) -> None:
    task = tasks.create(service, "no-such-kind", "a job Kerma does not know")
    RqJobs(redis_url).submit(task["id"])
    _worker(settings, redis_url)
    failed = rq_api.get(f"/fhir/Task/{task['id']}").get_json()
    assert failed["status"] == "failed"
    assert failed["statusReason"]["text"] == "no job kind 'no-such-kind'"
    url = f"/fhir/Task/{task['id']}/$retry"
    assert as_role("viewer").post(url, {}).status_code == 403
    again = rq_api.post(url, {})
    assert again.status_code == 202 and again.get_json()["status"] == "requested"
    assert "statusReason" not in again.get_json()
    assert rq_api.post(url, {}).status_code == 409  # not failed (yet): nothing to retry
    _worker(settings, redis_url)
    failed = rq_api.get(f"/fhir/Task/{task['id']}").get_json()
    assert failed["status"] == "failed"
    [attempts] = [e for e in failed["extension"] if e["url"] == tasks.ATTEMPTS_URL]
    assert attempts["valueInteger"] == 2
    assert rq_api.post("/fhir/Task/nope/$retry", {}).status_code == 404


def test_without_redis_jobs_run_in_process(api: Api, store: Store, settings: Settings) -> None:
    build_ingestor(store, settings).ingest_file(PHILIPS)
    task = api.post("/fhir/ImagingStudy/$reclassify", {}).get_json()
    deadline = time.monotonic() + 30
    while api.get(f"/fhir/Task/{task['id']}").get_json()["status"] in ("requested", "in-progress"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert api.get(f"/fhir/Task/{task['id']}").get_json()["status"] == "completed"


def test_the_daily_run_as_a_job(service: FhirService, settings: Settings, redis_url: str) -> None:
    task = tasks.create(service, "daily", "the daily run", {"now": "2026-11-26T06:30:00+00:00"})
    RqJobs(redis_url).submit(task["id"])
    _worker(settings, redis_url)
    done = service.read("Task", task["id"])
    import orjson

    body = orjson.loads(done.body or b"")
    assert body["status"] == "completed"
    assert {o["type"]["text"]: o["valueInteger"] for o in body["output"]} == {
        "detectedIssues": 0,
        "reviewLists": 0,
    }


def test_kerma_worker_needs_redis(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERMA_")}
    env["KERMA_DATA_DIR"] = str(tmp_path)
    done = subprocess.run([KERMA, "worker", "--burst"], env=env, capture_output=True, text=True)
    assert done.returncode == 2 and "KERMA_REDIS_URL" in done.stderr


def test_the_daily_run_is_submitted_once_per_day(service: FhirService) -> None:
    """Two kerma serve processes (two DailyJobs on one store): one Task, one job."""
    from server.jobs.schedule import DailyJobs

    class Recorder:
        def __init__(self) -> None:
            self.submitted: list[str] = []

        def submit(self, task_id: str) -> None:
            self.submitted.append(task_id)

    jobs = Recorder()
    for _ in range(2):
        DailyJobs(service, jobs, "06:30").tick()
    assert len(jobs.submitted) == 1
    task = service.read("Task", jobs.submitted[0])
    import orjson

    assert orjson.loads(task.body or b"")["identifier"][0]["value"].startswith("daily/")
