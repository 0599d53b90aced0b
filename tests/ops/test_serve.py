"""`kerma serve` as an operator meets it: a port in use named with its setting, SIGTERM that
finishes the association in flight and exits 0, /metrics counting across its processes."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydicom import dcmread
from pynetdicom import AE

from server.dicom.transport import NO_DELAY
from tests.dicom.conftest import CORPUS, free_port

KERMA = str(Path(sys.executable).parent / "kerma")
PORTS = ("KERMA_HTTP_PORT", "KERMA_DICOM_PORT", "KERMA_HL7_PORT")
# the tests kill kerma serve: what it leaves in TMPDIR goes with the test
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("children_tmpdir")]


def _env(data_dir: Path) -> dict[str, str]:
    """Three ports of its own; HTTP in kerma serve's process unless a test asks for more."""
    plain = {k: v for k, v in os.environ.items() if not k.startswith("KERMA_")}
    ports: set[str] = set()
    while len(ports) < len(PORTS):  # three different ones: a repeat is a settings error
        ports.add(str(free_port()))
    return {
        **plain,
        "KERMA_DATA_DIR": str(data_dir),
        "KERMA_HTTP_PROCESSES": "1",
        **dict(zip(PORTS, sorted(ports), strict=True)),
    }


def _answers(url: str, token: str = "") -> bool:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=1):
            return True
    except OSError:
        return False


def _wait_for(server: subprocess.Popen[Any], url: str, seconds: float) -> float:
    """Until `url` answers (while the server runs); the deadline, for what waits next."""
    deadline = time.monotonic() + seconds
    while not _answers(url):
        assert server.poll() is None and time.monotonic() < deadline, "kerma serve did not start"
        time.sleep(0.1)
    return deadline


def _bindable(port: int) -> bool:
    """As the next server binds it: connections closed a moment ago (TIME_WAIT) do not count."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.parametrize("busy", PORTS)
def test_a_port_in_use_is_named_with_its_setting_and_nothing_stays_bound(
    tmp_path: Path, busy: str
) -> None:
    env = _env(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(env[busy])))
        taken.listen()
        run = subprocess.run([KERMA, "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stderr
    lines = [line for line in run.stderr.splitlines() if "ERROR" in line]
    assert len(lines) == 1 and f"{busy}={env[busy]} on 127.0.0.1 is in use" in lines[0], run.stderr
    assert "serving" not in run.stderr and "Traceback" not in run.stderr
    assert all(_bindable(int(env[p])) for p in PORTS)  # what it had bound, it let go


def test_sigterm_lets_the_association_in_flight_finish_and_exits_0(tmp_path: Path) -> None:
    env = _env(tmp_path)
    token = subprocess.run([KERMA, "users", "add", "ops", "--role", "admin"], env=env, check=True,
                           capture_output=True, text=True).stdout.split()[-1]  # fmt: skip
    server = subprocess.Popen([KERMA, "serve"], env=env, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{env['KERMA_HTTP_PORT']}"
    try:
        _wait_for(server, f"{base}/health/ready", 60)
        files = sorted((CORPUS / "openrem").glob("CT-RDSR-*.dcm"))[:6]
        datasets = [dcmread(f) for f in files]
        ae = AE(ae_title="MODALITY")
        for uid in {ds.SOPClassUID for ds in datasets}:
            ae.add_requested_context(uid)
        assoc = ae.associate("127.0.0.1", int(env["KERMA_DICOM_PORT"]), ae_title="KERMA",
                             evt_handlers=[NO_DELAY])  # fmt: skip
        assert assoc.is_established
        assert assoc.send_c_store(datasets[0]).Status == 0
        server.send_signal(signal.SIGTERM)  # with the association open
        time.sleep(0.5)
        statuses = [assoc.send_c_store(ds).Status for ds in datasets[1:]]
        assoc.release()
        stopped_at = time.monotonic()
        assert server.wait(30) == 0
        assert time.monotonic() - stopped_at < 30
    finally:
        if server.poll() is None:
            server.kill()
        log = server.stderr.read() if server.stderr else ""
    assert statuses == [0] * 5
    assert "stopped" in log and "Traceback" not in log
    # every object acknowledged is in the store or waits in the spool for the next start
    studies = len({ds.StudyInstanceUID for ds in datasets})
    restarted = subprocess.Popen([KERMA, "serve"], env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while _study_count(base, token) != studies or any((tmp_path / "spool").glob("*.dcm")):
            assert restarted.poll() is None and time.monotonic() < deadline, "not all stored"
            time.sleep(0.2)
    finally:
        restarted.terminate()
        assert restarted.wait(30) == 0


def _study_count(base: str, token: str) -> int:
    request = urllib.request.Request(f"{base}/fhir/ImagingStudy?_summary=count",
                                     headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=2) as r:
            return int(json.load(r)["total"])
    except OSError:
        return -1


def test_metrics_count_what_the_spool_worker_process_ingested(tmp_path: Path) -> None:
    env = _env(tmp_path)
    token = subprocess.run([KERMA, "users", "add", "prom", "--role", "viewer"], env=env, check=True,
                           capture_output=True, text=True).stdout.split()[-1]  # fmt: skip
    server = subprocess.Popen([KERMA, "serve"], env=env, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{env['KERMA_HTTP_PORT']}"
    try:
        deadline = _wait_for(server, f"{base}/health/ready", 60)
        ds = dcmread(CORPUS / "openrem" / "CT-RDSR-Siemens_Flash-TAP-SS.dcm")
        ae = AE(ae_title="MODALITY")
        ae.add_requested_context(ds.SOPClassUID)
        assoc = ae.associate("127.0.0.1", int(env["KERMA_DICOM_PORT"]), ae_title="KERMA")
        assert assoc.send_c_store(ds).Status == 0
        assoc.release()
        while (ingested := _sample(base, token, "kerma_objects_ingested_total",
                                   modality="CT", status="ingested")) == 0:  # fmt: skip
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert ingested == 1
        assert _sample(base, token, "kerma_objects_received_total",
                       sop_class="XRayRadiationDoseSRStorage") == 1  # fmt: skip
        assert _sample(base, token, "kerma_spool_depth") == 0
    finally:
        server.terminate()
        server.wait(30)


def _sample(base: str, token: str, name: str, **labels: str) -> float:
    request = urllib.request.Request(
        f"{base}/metrics", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as r:
        text = r.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def _clients_spread_over(pids: list[str], port: int) -> None:
    """30 keep-alive clients: each HTTP process holds half (server/fair_accept.py; on one
    shared socket the process awake first took nearly all, hashed over a socket each they
    split unevenly), give or take one accepted while the other looked. Once both serve: the
    connections of those that came first stay where they were accepted."""
    deadline = time.monotonic() + 60
    while min(_held_after(pids, port, 2)) == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    held = _held_after(pids, port, 30)
    assert sum(held) == 30 and max(held) - min(held) <= 2, held


def _held_after(pids: list[str], port: int, count: int) -> list[int]:
    """Each process's share of `count` keep-alive clients, each having had an answer."""
    clients = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(count)]
    try:
        for client in clients:
            client.request("GET", "/health/live")
            client.getresponse().read()
        return [len(_established(pid, port)) for pid in pids]
    finally:
        for client in clients:
            client.close()


def _established(pid: str, port: int) -> set[str]:
    """Socket inodes of `pid`'s established TCP connections on local `port` (Linux /proc)."""
    mine = {os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1] for fd in os.listdir(f"/proc/{pid}/fd")
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:[")}  # fmt: skip
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port, state, inode = int(fields[1].rsplit(":", 1)[1], 16), fields[3], fields[9]
            if local_port == port and state == "01" and inode in mine:
                found.add(inode)
    return found


def test_http_in_two_processes_answers_and_stops_cleanly(tmp_path: Path) -> None:
    env = {**_env(tmp_path), "KERMA_HTTP_PROCESSES": "2", "KERMA_DICOM_PORT": "0",
           "KERMA_HL7_PORT": "0"}  # fmt: skip
    server = subprocess.Popen([KERMA, "serve"], env=env, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{env['KERMA_HTTP_PORT']}"
    try:
        _wait_for(server, f"{base}/health/live", 90)
        assert all(_answers(f"{base}/health/ready") for _ in range(20))
        children = _workers(server.pid)
        assert len(children) == 2
        _clients_spread_over(children, int(env["KERMA_HTTP_PORT"]))
        second = {**env, "KERMA_DATA_DIR": str(tmp_path / "second")}  # same HTTP port
        run = subprocess.run([KERMA, "serve"], env={**second, "KERMA_HTTP_PROCESSES": "2"},
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert run.returncode == 2 and "KERMA_HTTP_PORT" in run.stderr, run.stderr
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
    finally:
        if server.poll() is None:
            server.kill()
    log = server.stderr.read() if server.stderr else ""
    ready = [line for line in log.splitlines() if "http-process-ready" in line]
    assert len({line.split("pid=")[1].split()[0] for line in ready}) == 2
    assert "processes=2" in log and "stopped" in log and "Traceback" not in log
    assert not any(_running(pid) for pid in children)


def _pgrep(*args: str) -> list[int]:
    return [int(pid) for pid in subprocess.run(["pgrep", *args], capture_output=True,
                                               text=True).stdout.split()]  # fmt: skip


def _workers(server_pid: int) -> list[int]:
    """The server's HTTP, DICOM and spool processes: the children of its fork server (the
    child of `kerma serve` running multiprocessing's forkserver)."""
    return [pid for forkserver in _pgrep("-P", str(server_pid), "-f", "forkserver")
            for pid in _pgrep("-P", str(forkserver))]  # fmt: skip


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat's fields after the command's name (field 3, the state, first)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _running(pid: int) -> bool:
    """Not ended: a process that ended and waits to be reaped (a zombie, state Z: orphans are
    reaped by init, which took 1.5 s here) holds no port and runs nothing."""
    try:
        return _stat(pid)[0] != "Z"
    except FileNotFoundError:
        return False


def _descendants(pid: int) -> list[int]:
    children = _pgrep("-P", str(pid))
    return children + [d for child in children for d in _descendants(child)]


def _spool_worker(server_pid: int) -> int:
    """The spool worker: the child of `kerma serve` at nice 10 (/proc/<pid>/stat field 19),
    once it has started."""
    deadline = time.monotonic() + 60
    while True:
        nice = {pid: _stat(pid)[16] for pid in _workers(server_pid)}
        workers = [pid for pid, value in nice.items() if value == "10"]
        if len(workers) == 1:
            return workers[0]
        assert time.monotonic() < deadline, f"no spool worker among {nice}"
        time.sleep(0.2)


def test_a_spool_worker_killed_is_replaced_and_c_store_still_answers(tmp_path: Path) -> None:
    env = _env(tmp_path)
    token = subprocess.run([KERMA, "users", "add", "ops", "--role", "admin"], env=env, check=True,
                           capture_output=True, text=True).stdout.split()[-1]  # fmt: skip
    server = subprocess.Popen([KERMA, "serve"], env=env, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{env['KERMA_HTTP_PORT']}"
    try:
        deadline = _wait_for(server, f"{base}/health/ready", 60)
        killed = _spool_worker(server.pid)
        os.kill(killed, signal.SIGKILL)  # out of memory, say, while it waited for work
        ds = dcmread(CORPUS / "openrem" / "CT-RDSR-Siemens_Flash-TAP-SS.dcm")
        ae = AE(ae_title="MODALITY")
        ae.dimse_timeout = 10  # a C-STORE that hangs fails the test instead of blocking it
        ae.add_requested_context(ds.SOPClassUID)
        assoc = ae.associate("127.0.0.1", int(env["KERMA_DICOM_PORT"]), ae_title="KERMA")
        assert assoc.send_c_store(ds).Status == 0
        assoc.release()
        while _study_count(base, token) != 1:  # a new worker stored it
            assert time.monotonic() < deadline, "the object was not stored"
            time.sleep(0.2)
        assert _spool_worker(server.pid) != killed
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
    finally:
        if server.poll() is None:
            server.kill()
    log = server.stderr.read() if server.stderr else ""
    assert f"spool-worker-died pid={killed} exitcode=-9" in log


@pytest.mark.parametrize("when", ["serving", "starting"])
def test_sigterm_to_every_process_of_the_service_stops_it(tmp_path: Path, when: str) -> None:
    """systemd stops a service so (KillMode=control-group): the spool worker and the HTTP
    processes get SIGTERM at the same time as `kerma serve`, whether they serve already or
    are still starting (an HTTP process killed at start never says it is ready)."""
    env = {**_env(tmp_path), "KERMA_HTTP_PROCESSES": "2"}
    server = subprocess.Popen([KERMA, "serve"], env=env, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{env['KERMA_HTTP_PORT']}"
    log = ""
    try:
        if when == "serving":
            _wait_for(server, f"{base}/health/ready", 90)
        else:
            assert server.stderr is not None
            while "http-processes-starting" not in log:
                log += server.stderr.readline()
        children = _descendants(server.pid)  # the fork server, the resource tracker, the doors
        os.killpg(server.pid, signal.SIGTERM)
        assert server.wait(30) == 0
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
    log += server.stderr.read() if server.stderr else ""
    assert "stopped" in log and "Traceback" not in log
    deadline = time.monotonic() + 10  # multiprocessing's resource tracker ends after them all
    while any(_running(pid) for pid in children):
        assert time.monotonic() < deadline, [Path(f"/proc/{p}/cmdline").read_text() for p in children
                                             if _running(p)]  # fmt: skip
        time.sleep(0.1)


def test_its_processes_end_when_kerma_serve_is_killed(tmp_path: Path) -> None:
    """kill -9 of `kerma serve` alone: its HTTP and DICOM listener processes and its spool
    worker stop by themselves, rather than answer on the ports beside the next server."""
    env = {**_env(tmp_path), "KERMA_HTTP_PROCESSES": "2", "KERMA_DICOM_PROCESSES": "2"}
    server = subprocess.Popen([KERMA, "serve"], env=env, stderr=subprocess.DEVNULL,
                              start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{env['KERMA_HTTP_PORT']}"
    try:
        _wait_for(server, f"{base}/health/ready", 90)
        children = _workers(server.pid)
        assert len(children) == 5  # 2 HTTP, 2 DICOM, the spool worker
        server.kill()
        server.wait(10)
        deadline = time.monotonic() + 20
        while any(_running(pid) for pid in children):
            assert time.monotonic() < deadline, "orphans still run"
            time.sleep(0.2)
        assert _bindable(int(env["KERMA_HTTP_PORT"])) and _bindable(int(env["KERMA_DICOM_PORT"]))
    finally:
        with contextlib.suppress(ProcessLookupError):  # all gone, as they should be
            os.killpg(server.pid, signal.SIGKILL)


def test_an_http_or_dicom_process_killed_is_replaced(tmp_path: Path) -> None:
    env = {**_env(tmp_path), "KERMA_HTTP_PROCESSES": "2", "KERMA_DICOM_PROCESSES": "2"}
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log_file:
        server = subprocess.Popen([KERMA, "serve"], env=env, stderr=log_file)
    base = f"http://127.0.0.1:{env['KERMA_HTTP_PORT']}"
    try:
        deadline = time.monotonic() + 90
        while " serving " not in log_path.read_text():  # every process ready, not just one
            assert server.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        worker = _spool_worker(server.pid)
        doors = [pid for pid in _workers(server.pid) if pid != worker]
        assert len(doors) == 4  # 2 HTTP, 2 DICOM listeners
        for pid in doors:
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 90
        while log_path.read_text().count("-process-died") < 4 or not all(
            _answers(f"{base}/health/live") for _ in range(10)
        ):
            assert time.monotonic() < deadline, "HTTP not served again\n" + log_path.read_text()
            time.sleep(0.2)
        ds = dcmread(CORPUS / "openrem" / "CT-RDSR-Siemens_Flash-TAP-SS.dcm")
        ae = AE(ae_title="MODALITY")
        ae.add_requested_context(ds.SOPClassUID)
        while not (assoc := ae.associate("127.0.0.1", int(env["KERMA_DICOM_PORT"]),
                                         ae_title="KERMA")).is_established:  # fmt: skip
            assert time.monotonic() < deadline, "DICOM not served again"
            time.sleep(0.2)
        assert assoc.send_c_store(ds).Status == 0
        assoc.release()
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
    finally:
        if server.poll() is None:
            server.kill()
    died = [line for line in log_path.read_text().splitlines() if "-process-died" in line]
    assert sorted(line.split("pid=")[1].split()[0] for line in died) == sorted(map(str, doors))
    assert sum("http-process-died" in line for line in died) == 2
    assert sum("dicom-process-died" in line for line in died) == 2
