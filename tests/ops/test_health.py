"""/health/live and /health/ready tell the truth: red with the reason when a dependency is
down (a real Redis stopped and started again, with a real `kerma worker`), green when it is back;
/metrics parses with prometheus_client's parser and moves after an ingest."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from rq import Worker

from server.app import create_app
from server.config import Settings
from server.ingest import build_ingestor
from server.store.port import Store
from tests.dicom.conftest import SIEMENS_CT, free_port

KERMA = str(Path(sys.executable).parent / "kerma")


def test_live_and_ready_on_a_healthy_store(client: FlaskClient) -> None:
    assert client.get("/health/live").get_json() == {"status": "alive"}
    ready = client.get("/health/ready")
    body = ready.get_json()
    assert ready.status_code == 200 and body["status"] == "ready" and body["reasons"] == []
    assert body["checks"]["store"]["ok"] and body["checks"]["spool"]["depth"] == 0


def test_ready_is_red_while_the_smtp_server_refuses(settings: Settings, store: Store) -> None:
    closed = free_port()
    client = create_app(
        replace(settings, smtp_host="127.0.0.1", smtp_port=closed), store
    ).test_client()
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.get_json()["reasons"] == [
        f"smtp: 127.0.0.1:{closed} refuses connections (Connection refused)"
    ]


def test_ready_reports_the_spool_backlog_and_its_age(
    settings: Settings, client: FlaskClient
) -> None:
    waiting = settings.spool_dir / f"{time.time_ns() - 90 * 10**9:020d}-000000.dcm"
    waiting.parent.mkdir(parents=True, exist_ok=True)
    waiting.write_bytes(b"x")
    spool = client.get("/health/ready").get_json()["checks"]["spool"]
    assert spool["depth"] == 1 and 89 < spool["oldest_age_s"] < 120


@pytest.fixture
def redis_port(tmp_path: Path) -> Iterator[int]:
    """A Redis of this test's own, which it may stop and start again."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: scripts/setup installs it")
    port = free_port()
    yield port
    subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True)


def _start_redis(port: int) -> None:
    """Started, and answering: a daemonised redis-server returns before it listens, and a
    readiness check in between saw 'does not answer' where the test waited for 'no worker'."""
    subprocess.run(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--daemonize", "yes", "--logfile", ""], check=True)  # fmt: skip
    deadline = time.monotonic() + 30
    while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True,
                         text=True).stdout.strip() != "PONG":  # fmt: skip
        assert time.monotonic() < deadline, f"redis-server on port {port} does not answer"
        time.sleep(0.05)


def _ready(client: FlaskClient) -> tuple[int, list[str]]:
    r = client.get("/health/ready")
    return r.status_code, r.get_json()["reasons"]


def _wait_for(client: FlaskClient, status: int, seconds: float = 30) -> list[str]:
    deadline = time.monotonic() + seconds
    while (found := _ready(client))[0] != status:
        assert time.monotonic() < deadline, found
        time.sleep(0.2)
    return found[1]


@pytest.mark.slow
def test_ready_follows_redis_down_and_back(
    settings: Settings, store: Store, redis_port: int, tmp_path: Path
) -> None:
    url = f"redis://127.0.0.1:{redis_port}/0"
    _start_redis(redis_port)
    client = create_app(replace(settings, redis_url=url), store).test_client()
    assert _wait_for(client, 503) == ["redis: no kerma worker is running: jobs wait"]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KERMA_")},
           "KERMA_REDIS_URL": url, "KERMA_DATA_DIR": str(tmp_path)}  # fmt: skip
    worker = subprocess.Popen([KERMA, "worker"], env=env, stderr=subprocess.DEVNULL)
    try:
        _wait_for(client, 200)
        _wait_until_idle(url)
        subprocess.run(["redis-cli", "-p", str(redis_port), "shutdown", "nosave"], check=True)
        reasons = _wait_for(client, 503)
        assert reasons == ["redis: Redis does not answer (ConnectionError)"]
        _start_redis(redis_port)  # empty: the worker registers itself again
        _wait_for(client, 200)
    finally:
        worker.terminate()
        worker.wait(30)


def _wait_until_idle(url: str, seconds: float = 30) -> None:
    """Until the worker waits for jobs: RQ's worker quits when Redis fails it elsewhere (while
    it starts, between jobs; systemd's Restart=on-failure starts it again), and waiting for
    jobs is where a worker spends its time. Under load the start took long enough for the stop
    below to land in it."""
    connection = Redis.from_url(url)
    deadline = time.monotonic() + seconds
    while not any(w.get_state() == "idle" for w in Worker.all(connection=connection)):
        assert time.monotonic() < deadline, "the worker never waited for jobs"
        time.sleep(0.1)


def _metric(client: FlaskClient, token: str, name: str, **labels: str) -> float:
    r = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.content_type.startswith("text/plain")
    return sum(
        sample.value
        for family in text_string_to_metric_families(r.get_data(as_text=True))
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def test_metrics_need_a_token_and_move_after_an_ingest(
    client: FlaskClient, tokens: dict[str, str], store: Store, settings: Settings
) -> None:
    assert client.get("/metrics").status_code == 401
    token = tokens["viewer"]
    ingested: dict[str, Any] = {"modality": "CT", "status": "ingested"}
    before = _metric(client, token, "kerma_objects_ingested_total", **ingested)
    timed = _metric(client, token, "kerma_ingest_seconds_count")
    build_ingestor(store, settings).ingest_file(SIEMENS_CT)
    assert _metric(client, token, "kerma_objects_ingested_total", **ingested) == before + 1
    assert _metric(client, token, "kerma_ingest_seconds_count") == timed + 1
    requests = _metric(client, token, "kerma_http_request_seconds_count", route="/metrics")
    assert requests >= 3  # the three scrapes before this one
    assert _metric(client, token, "kerma_quarantined") == 0


def test_hl7_messages_are_counted_by_type_and_ack_code(
    client: FlaskClient, tokens: dict[str, str], store: Store, settings: Settings
) -> None:
    from server.hl7.files import messages_in
    from server.ingest.hl7 import build_handler

    token = tokens["viewer"]
    accepted = {"message_type": "ADT^A08", "ack_code": "AA"}
    rejected = {"message_type": "unknown", "ack_code": "AR"}
    before = (_metric(client, token, "kerma_hl7_messages_total", **accepted),
              _metric(client, token, "kerma_hl7_messages_total", **rejected))  # fmt: skip
    handler = build_handler(store, settings)
    raw = (Path(__file__).parent.parent / "data" / "hl7" / "ADT_A08-dcm4che-2021.hl7").read_bytes()
    for message in messages_in(raw):
        handler.handle(message)
    handler.handle(b"not HL7 at all")
    after = (_metric(client, token, "kerma_hl7_messages_total", **accepted),
             _metric(client, token, "kerma_hl7_messages_total", **rejected))  # fmt: skip
    assert after == (before[0] + 1, before[1] + 1)
