"""A port taken is named with its setting: found before anything starts (`kerma serve` exits
2 at once, tests/ops/test_serve.py), and by the listener's own bind when another program took
it after that check."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.config import Settings
from server.network import start_dicom
from server.ports import ListenError, taken
from server.serving import serve
from server.store.port import Store

PORTS = ("http_port", "dicom_port", "hl7_port")


@pytest.fixture
def held() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield int(other.getsockname()[1])


def _settings(tmp_path: Path, port: str, value: int) -> Settings:
    """Every listener on 127.0.0.1 and off (port 0) but the one given; HTTP in this process."""
    off = {name: 0 for name in PORTS}
    hosts = {"http_host": "127.0.0.1", "dicom_host": "127.0.0.1", "hl7_host": "127.0.0.1"}
    return Settings(data_dir=tmp_path, http_processes=1, **hosts, **{**off, port: value})


@pytest.mark.parametrize("port", PORTS)
def test_the_check_names_the_taken_port_with_its_setting(
    tmp_path: Path, held: int, port: str
) -> None:
    [problem] = taken(_settings(tmp_path, port, held))
    setting = f"KERMA_{port.upper()}"
    assert str(problem).startswith(f"{setting}={held} on 127.0.0.1 is in use")
    assert taken(_settings(tmp_path, port, 0)) == []


def _in_use(setting: str, port: int) -> str:
    return (f"{setting}={port} on 127.0.0.1 is in use (another program, or another kerma "
            f"serve, listens there); stop it or set {setting}")  # fmt: skip


@pytest.mark.parametrize("port", ["http_port", "hl7_port"])
def test_a_port_taken_after_the_check_is_named_by_its_listener(
    tmp_path: Path, held: int, port: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="kerma"):
        assert serve(_settings(tmp_path, port, held)) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [_in_use(f"KERMA_{port.upper()}", held)]


def test_a_dicom_port_taken_after_the_check_is_named_by_the_listener(
    tmp_path: Path, held: int, store: Store
) -> None:
    # the listener alone: kerma serve would start its fork server for the spool worker first
    with pytest.raises(ListenError) as e:
        start_dicom(_settings(tmp_path, "dicom_port", held), store)
    assert str(e.value) == _in_use("KERMA_DICOM_PORT", held)
