"""Host header validation (issue 23): without KERMA_BASE_URL links are made from the Host
header, so only this machine's names (or KERMA_ALLOWED_HOSTS) are answered."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from server.api.hosts import host_name
from server.app import create_app
from server.auth.users import add_user
from server.config import Settings
from server.store.port import Store


def _client(tmp_path: Path, store: Store, **settings: str) -> tuple[FlaskClient, dict[str, str]]:
    app = create_app(Settings(data_dir=tmp_path, **settings), store)  # type: ignore[arg-type]
    token = add_user(store, "mpe-user", "mpe")
    return app.test_client(), {"Authorization": f"Bearer {token}"}


def test_a_forged_host_gets_400_and_no_link_to_it(tmp_path: Path, store: Store) -> None:
    client, auth = _client(tmp_path, store)
    forged = client.get("/fhir/Patient", headers={**auth, "Host": "evil.example"})
    assert forged.status_code == 400
    assert forged.get_json()["resourceType"] == "OperationOutcome"
    assert "evil.example" in forged.get_json()["issue"][0]["diagnostics"]
    assert b"http://evil.example" not in forged.data
    ok = client.get("/fhir/Patient", headers={**auth, "Host": "localhost:8080"})
    assert ok.status_code == 200
    assert ok.get_json()["link"][0]["url"].startswith("http://localhost:8080/fhir/Patient")
    # probes call health by address
    assert client.get("/health/live", headers={"Host": "10.0.0.7:8080"}).status_code == 200


def test_the_allowed_hosts_are_the_sites_names(tmp_path: Path, store: Store) -> None:
    client, auth = _client(tmp_path, store, allowed_hosts="kerma.hospital.local, 10.0.0.7")
    for host, status in (("kerma.hospital.local", 200), ("KERMA.hospital.local:443", 200),
                         ("10.0.0.7:8080", 200), ("localhost", 400)):  # fmt: skip
        answer = client.get("/fhir/Patient", headers={**auth, "Host": host})
        assert answer.status_code == status, host


def test_with_a_base_url_any_host_is_answered_and_links_use_the_base(
    tmp_path: Path, store: Store
) -> None:
    client, auth = _client(tmp_path, store, base_url="https://kerma.hospital.local/fhir")
    answer = client.get("/fhir/Patient", headers={**auth, "Host": "evil.example"})
    assert answer.status_code == 200
    assert answer.get_json()["link"][0]["url"].startswith("https://kerma.hospital.local/fhir/")


@pytest.mark.parametrize(("header", "name"), [("a.b:80", "a.b"), ("[::1]:8080", "::1"),
                                              ("::1", "::1"), ("Kerma", "kerma"), ("", "")])  # fmt: skip
def test_host_names(header: str, name: str) -> None:
    assert host_name(header) == name
