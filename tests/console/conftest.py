"""A world for the console: a CT examination above its UKHSA DRL (an alert), a fluoroscopy
examination with a skin dose map, on two devices; people with passwords in three roles, the
radiographer working on the fluoroscopy unit only."""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from server.auth.passwords import set_password
from server.auth.users import add_user
from server.config import Settings
from server.ingest import build_ingestor
from server.site import build_service
from server.store.port import Store
from tests.dicom.conftest import SIEMENS_CT

ZEE = SIEMENS_CT.parent / "RF-RDSR-Siemens-Zee.dcm"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, drl_sets="UKHSA GB 2022", base_url="http://kerma.test/fhir")


@dataclass(frozen=True)
class World:
    ct_study: str  # "ImagingStudy/<id>"
    rf_study: str
    ct_device: str
    rf_device: str


@pytest.fixture
def world(store: Store, settings: Settings) -> World:
    ingestor = build_ingestor(store, settings)
    ct, rf = (ingestor.ingest_file(path) for path in (SIEMENS_CT, ZEE))
    assert ct.study and rf.study
    devices = {r.modality: _device(store, r.study) for r in (ct, rf)}
    for name, role, bound in (("marie", "mpe", ()), ("rita", "radiographer", (devices["RF"],)),
                              ("vic", "viewer", ())):  # fmt: skip
        add_user(store, name, role, bound)
        set_password(store, name, PASSWORD)
    return World(ct.study, rf.study, devices["CT"], devices["RF"])


@pytest.fixture
def served(app: Any, world: World) -> Iterator[str]:
    """The console on a real HTTP port, for the browser tests."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def _device(store: Store, study: str) -> str:
    [summary] = (
        build_service(store)
        .search("Observation", [("part-of", study), ("code", "http://loinc.org|73569-6")])
        .matches
    )
    return str(orjson.loads(summary.body or b"{}")["device"]["reference"])


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the page has no CSRF token"
    return found.group(1)


def sign_in(client: FlaskClient, name: str, password: str = PASSWORD, next_page: str = "/") -> Any:
    token = csrf(client.get("/sign-in").get_data(as_text=True))
    return client.post("/sign-in", data={"name": name, "password": password, "csrf_token": token,
                                         "next": next_page})  # fmt: skip


def text(page: str) -> str:
    """A page's words, as a screen reader would read them in order."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page))).strip()
