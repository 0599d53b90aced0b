"""The `kerma` command as an operator runs it: a real process, a real HTTP server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

# the console script installed with the package, as an operator runs it
KERMA = [str(Path(sys.executable).parent / "kerma")]
DATA = Path(__file__).parent / "data"


def run(
    args: list[str], env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*KERMA, *args], env=env, capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KERMA_")}
    return {**clean, "KERMA_DATA_DIR": str(tmp_path / "data")}


def test_every_command_has_help(env: dict[str, str]) -> None:
    top = run(["--help"], env).stdout
    for command in ("serve", "users", "ingest", "openapi", "quarantine"):
        assert command in top
        assert "Usage:" in run([command, "--help"], env).stdout
    for sub in ("add", "list", "revoke"):
        assert "Usage:" in run(["users", sub, "--help"], env).stdout


def test_users_add_prints_the_token_alone_on_the_last_line(env: dict[str, str]) -> None:
    out = run(["users", "add", "ann", "--role", "viewer"], env).stdout
    token = out.strip().splitlines()[-1]
    assert token.startswith("kerma_") and " " not in token
    assert run(["users", "add", "ann", "--role", "viewer"], env, check=False).returncode != 0
    assert run(["users", "add", "bob", "--role", "wizard"], env, check=False).returncode != 0
    assert "ann\tviewer\tactive" in run(["users", "list"], env).stdout
    run(["users", "revoke", "ann"], env)
    assert "ann\tviewer\trevoked" in run(["users", "list"], env).stdout


def test_ingest_reports_and_fails_on_bad_files(env: dict[str, str], tmp_path: Path) -> None:
    out = run(["ingest", str(DATA / "fhir-rds-ig/bundle-sample.json")], env).stdout
    assert out.splitlines()[1].split() == ["fhir", "1", "0", "0", "0", "0"]
    bad = tmp_path / "bad.json"
    bad.write_text('{"resourceType": "Patient", "gender": "bogus"}')
    result = run(["ingest", str(bad)], env, check=False)
    assert result.returncode == 1 and "not loaded" in result.stderr


def test_ingest_dicom_folder_with_quarantine(env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    for name in ("CT-RDSR-Siemens_Flash-TAP-SS.dcm", "NM-PetIm-GE.dcm"):
        (folder / name).write_bytes((DATA / "dicom/openrem" / name).read_bytes())
    (folder / "broken.dcm").write_bytes(b"DICM? no: " + bytes(range(256)))
    (folder / "README.md").write_text("not an object")
    result = run(["ingest", "--workers", "2", str(folder)], env, check=False)
    assert result.returncode == 1  # something was quarantined
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()[1:-1]}
    assert rows["CT"] == ["1", "0", "0", "0", "0"]
    assert rows["-"] == ["0", "0", "1", "1", "0"]
    assert "3 files" in result.stdout.splitlines()[-1]
    header, *listed = run(["quarantine", "list"], env).stdout.strip().splitlines()
    assert header.split("\t") == ["id", "received", "name", "reason"]
    assert len(listed) == 1 and "broken.dcm" in listed[0] and "not a DICOM file" in listed[0]
    item_id = listed[0].split("\t")[0]
    as_json = json.loads(run(["quarantine", "list", "--json"], env).stdout)
    assert [row["id"] for row in as_json] == [item_id] and as_json[0]["name"] == "broken.dcm"
    assert "reason: not a DICOM file" in run(["quarantine", "show", item_id], env).stdout
    again = run(["quarantine", "reprocess"], env, check=False)
    assert again.returncode == 1 and "still unreadable" in again.stdout
    second = run(["ingest", str(folder / "CT-RDSR-Siemens_Flash-TAP-SS.dcm")], env).stdout
    assert second.splitlines()[1].split() == ["CT", "0", "1", "0", "0", "0"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_over_http(env: dict[str, str]) -> None:
    port = _free_port()
    env = {**env, "KERMA_HTTP_PORT": str(port), "KERMA_DICOM_PORT": "0", "KERMA_HL7_PORT": "0",
           "KERMA_HTTP_PROCESSES": "1"}  # fmt: skip
    token = run(["users", "add", "ops", "--role", "mpe"], env).stdout.strip().splitlines()[-1]
    run(["ingest", str(DATA / "fhir-rds-ig/examples-transaction.json")], env)
    server = subprocess.Popen(
        [*KERMA, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=1) as r:
                    assert json.load(r)["status"] == "ok"
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        else:
            pytest.fail("kerma serve did not answer /health")
        request = urllib.request.Request(
            f"{base}/fhir/Observation?code=73569-6&_sort=_id",
            headers={"Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(request, timeout=5) as r:
            bundle = json.load(r)
        assert bundle["total"] == 3
        assert [e["resource"]["id"] for e in bundle["entry"]] == ["122", "139", "545"]
        query = {"query": '{ ObservationList(code: "73569-6", _sort: "_id") { id } }'}
        graphql = urllib.request.Request(
            f"{base}/fhir/$graphql",
            data=json.dumps(query).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(graphql, timeout=30) as r:  # the schema is built on first use
            answer = json.load(r)
        assert [o["id"] for o in answer["data"]["ObservationList"]] == ["122", "139", "545"]
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(f"{base}/fhir/Observation", timeout=5)
        assert denied.value.code == 401
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_monitor_and_protocol_review(env: dict[str, str]) -> None:
    """The daily jobs once, and the protocol review lists, on a store with one CT study."""
    run(["ingest", str(DATA / "dicom/openrem/CT-RDSR-Siemens_Flash-TAP-SS.dcm")], env)
    done = run(
        ["monitor", "--now", "1997-02-01 06:30:00"], {**env, "KERMA_DRL_SETS": "UKHSA GB 2022"}
    )
    assert done.stdout == ""  # one study: no median of ten, no drift
    assert done.stderr.strip().endswith("0 new DetectedIssues, 0 review lists queued")
    listed = run(["protocol-review", "duplicate-protocols", "--days", "3660"], env)
    assert (
        listed.stderr.strip()
        == "0: protocols of one device with the same parameters under different names"
    )
    for bad_args in (["nonsense"], ["across-devices", "--days", "0"]):
        bad = run(["protocol-review", *bad_args], env, check=False)
        assert bad.returncode == 2 and "Usage:" in bad.stderr
