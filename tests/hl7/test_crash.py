"""kill -9 in the middle of an ADT stream: every message that got AA is applied after the
restart (kept before it was answered; kept but unapplied ones are applied at start)."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest

from server.site import build_service
from server.store.sqlite import SqliteStore
from tests.conftest import kerma_serve
from tests.dicom.conftest import free_port
from tests.hl7.conftest import message, msa, msh

MESSAGES = 300
KILL_AFTER = 120


def _up(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _exchange(sock: socket.socket, raw: bytes) -> bytes | None:
    """Send one framed message; its ACK, or None when the server is gone."""
    try:
        sock.sendall(b"\x0b" + raw + b"\x1c\r")
        answer = b""
        while not answer.endswith(b"\x1c\r"):
            chunk = sock.recv(65536)
            if not chunk:
                return None
            answer += chunk
    except OSError:
        return None
    return answer


@pytest.mark.usefixtures("children_tmpdir")  # what kill -9 leaves in TMPDIR goes with the test
def test_every_acknowledged_message_survives_kill_9(tmp_path: Path) -> None:
    port = free_port()
    ports = {"http_port": str(free_port()), "dicom_port": "0", "hl7_port": str(port)}
    applied: list[str] = []
    with (
        kerma_serve(tmp_path, lambda: _up(port), **ports) as server,
        socket.create_connection(("127.0.0.1", port), timeout=10) as sock,
    ):
        for i in range(MESSAGES):
            if len(applied) == KILL_AFTER:
                server.send_signal(signal.SIGKILL)
            raw = message(msh("ADT^A04", f"K{i}"), f"PID|||{i}^^^H||Doe^J{i}")
            answer = _exchange(sock, raw)
            if answer is None:
                break
            assert msa(answer)[1] == "AA"
            applied.append(str(i))
    assert KILL_AFTER <= len(applied) < MESSAGES

    with kerma_serve(tmp_path, lambda: _up(port), **ports):
        store = SqliteStore(tmp_path / "kerma.sqlite3")
        service = build_service(store)
        for patient_id in applied:
            found = service.search(
                "Patient", [("identifier", f"urn:kerma:patient-id:H|{patient_id}")]
            )
            assert found.total == 1, patient_id
        store.close()
