"""Shared fixtures: a fresh store per test, the Flask app over it, and one token per role."""

from __future__ import annotations

import functools
import gc
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from argon2 import PasswordHasher
from flask.testing import FlaskClient

from server.app import create_app
from server.auth import passwords
from server.auth.roles import roles
from server.auth.users import add_user
from server.config import Settings
from server.fhir import FhirService
from server.site import build_service
from server.store.port import Store
from server.store.sqlite import SqliteStore

DATA = Path(__file__).parent / "data"
# test files that take seconds each (real peers and processes, the whole corpus, fuzzing):
# left out of the quick subset for the edit-test loop, scripts/test -m "not slow"
SLOW = frozenset({
    "api/test_docs_page.py", "api/test_graphiql.py", "auth/test_pseudonymisation.py", "console/test_browser.py", "console/test_firefox.py", "dicom/test_crash.py", "dicom/test_dcmtk_interop.py",
    "dicom/test_fast_sr.py", "dicom/test_ocr.py", "fuzz/test_atheris.py", "dicom/test_pacs.py", "fhir/test_conformance.py", "hl7/test_crash.py", "ingest/test_corpus_facts.py",
    "ingest/test_corpus_ingest.py", "ingest/test_classification.py", "ingest/test_drl_checks.py",
    "bench", "test_cli.py", "test_schemathesis.py",
})  # fmt: skip


def _slow_file(path: Path) -> bool:
    """A file of SLOW, or in a folder of SLOW."""
    here = Path(__file__).parent
    if not path.is_relative_to(here):
        return False
    relative = path.relative_to(here)
    return any(p.as_posix() in SLOW for p in (relative, *relative.parents))


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The quick subset does not even import the slow files: collecting the API fuzzing alone
    (schemathesis generates its cases then) took 10-18 s of each worker."""
    if config.getoption("markexpr") == "not slow" and _slow_file(collection_path):
        return True
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, pytest.Function) and item.name not in item.nodeid:
            # schemathesis 4.32 names each operation's test "f[GET /path]" but leaves pytest
            # 9.2's node id at "f": pytest-xdist then ran one of the 411 tests of a function
            params = item.name.removeprefix(item.originalname)[1:-1]
            item._id = item.parent.id.child(item.originalname).with_params(params)
        if _slow_file(item.path):
            item.add_marker(pytest.mark.slow)
    # the slow files first (scripts/test hands them out in this order): a file of two tests
    # that takes 30 s, started last, kept one core waiting for it at the end of the run
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def _freeze_survivors(phase: str, info: dict[str, int]) -> None:
    """What outlived a full collection is left out of the next ones (gc.freeze). A test process
    holds one to two million objects that live until it ends (schemathesis's pool of the
    server's literals alone, 0.9 million tuples; the corpus; the GraphQL schemas), and each of
    its 30-60 full collections went over all of them: 51 of a run's 490 CPU-s were the
    collector's, 37 in one process, and a process took 6 s to end. Now 13, and 1.5 s. Cycles
    are still collected unless they outlive a full collection; those that do stay till the
    process ends (its peak memory 70-100 MB more)."""
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()


gc.callbacks.append(_freeze_survivors)


# folders a test module makes when it is collected, before fixtures exist: removed when the
# test process ends (pytest_unconfigure: xdist's workers end without running atexit)
_COLLECTION_FOLDERS: list[Path] = []


def collection_folder(prefix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    _COLLECTION_FOLDERS.append(folder)
    return folder


def pytest_unconfigure() -> None:
    for folder in _COLLECTION_FOLDERS:
        shutil.rmtree(folder, ignore_errors=True)


def restore(store: Store, template: Path) -> None:
    """`store`, which nothing was written to yet, becomes a copy of the SQLite file `template`
    (SQLite's backup): a test's data ingested once in a test process instead of in each test.
    Asserts nothing was written: a store's cached numbers would not fit the copy's."""
    assert isinstance(store, SqliteStore)
    with closing(sqlite3.connect(store.path)) as into, closing(sqlite3.connect(template)) as data:
        written = into.execute("SELECT (SELECT COUNT(*) FROM resource) + (SELECT COUNT(*) "
                               "FROM app_user) + (SELECT COUNT(*) FROM search_param)").fetchone()  # fmt: skip
        assert written == (0,), "restore() into a store that holds data"
        data.backup(into)


@pytest.fixture
def children_tmpdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """TMPDIR of the processes the test starts, a folder removed after it: a kerma serve killed
    with SIGKILL leaves its fork server's socket folder (pymp-*), a fuzzer its store (libFuzzer
    ends the process without Python's exit handlers). Short, for the socket's 107 bytes."""
    with tempfile.TemporaryDirectory(prefix="kerma-") as folder:
        monkeypatch.setenv("TMPDIR", folder)
        yield Path(folder)


MONGO_URL = os.environ.get("KERMA_TEST_MONGODB_URL", "")


def _mongo_store() -> Store:
    pytest.importorskip("mongoengine")
    from server.store.mongodb import MongoStore

    if MONGO_URL:
        import uuid

        return MongoStore(
            MONGO_URL, database=f"kerma_test_{uuid.uuid4().hex[:8]}", drop_on_close=True
        )
    import mongomock

    return MongoStore(
        "mongodb://localhost", database="kerma_test", client_class=mongomock.MongoClient
    )


# the hasher the server signs in with (argon2-cffi's defaults: RFC 9106's 64 MiB, 3 passes)
REAL_HASHER = passwords._HASHER


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashes() -> Iterator[None]:
    """argon2id at its smallest cost in the test processes: the real one costs 0.1-0.3 s of a
    core for each password set and each sign-in checked, hundreds a run (the console tests
    60 -> 36 CPU-s). The stored form is the same; tests/console/test_signin.py checks a hash of
    the real hasher."""
    passwords._HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    passwords._nobody.cache_clear()
    yield
    passwords._HASHER = REAL_HASHER
    passwords._nobody.cache_clear()


@functools.cache
def _migrated() -> Path:
    """An empty store's file, made once in a test process: a test's store starts as a copy of
    it (2 ms) instead of creating its tables (7 ms, a thousand stores a run)."""
    store = SqliteStore(collection_folder("kerma-empty-") / "kerma.sqlite3")
    store.close()
    return store.path


def _sqlite_store(path: Path) -> SqliteStore:
    shutil.copyfile(_migrated(), path)
    return SqliteStore(path)


@pytest.fixture(params=["sqlite", "mongodb"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Every store adapter: SQLite, and MongoDB (mongomock, or the real server when configured)."""
    store = (
        _sqlite_store(tmp_path / "kerma.sqlite3") if request.param == "sqlite" else _mongo_store()
    )
    yield store
    store.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = _sqlite_store(tmp_path / "kerma.sqlite3")
    yield s
    s.close()


@pytest.fixture
def service(store: Store) -> FhirService:
    return build_service(store)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, max_body_bytes=64 * 1024, base_url="http://kerma.test/fhir")


@pytest.fixture
def app(settings: Settings, store: Store) -> Iterator[Any]:
    app = create_app(settings, store)
    yield app
    app.extensions["kerma.audit"].stop()  # before the store closes


@pytest.fixture
def client(app: Any) -> FlaskClient:
    return app.test_client()  # type: ignore[no-any-return]


@pytest.fixture
def tokens(store: Store) -> dict[str, str]:
    """A token for each role; the radiographer works on Device/dev-a only."""
    return {
        name: add_user(
            store, f"{name}-user", name, ("Device/dev-a",) if name == "radiographer" else ()
        )
        for name in roles()
    }


class Api:
    """A FHIR client over the Flask test client, authenticated as one role."""

    def __init__(self, client: FlaskClient, token: str | None) -> None:
        self.client = client
        self.token = token

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        h = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {**h, **(extra or {})}

    def get(self, url: str, **headers: str) -> Any:
        return self.client.get(url, headers=self.headers(headers))

    def send(self, method: str, url: str, body: Any, **headers: str) -> Any:
        h = self.headers({"Content-Type": "application/fhir+json", **headers})
        return self.client.open(url, method=method, data=orjson.dumps(body), headers=h)

    def post(self, url: str, body: Any, **headers: str) -> Any:
        return self.send("POST", url, body, **headers)

    def put(self, url: str, body: Any, **headers: str) -> Any:
        return self.send("PUT", url, body, **headers)

    def delete(self, url: str) -> Any:
        return self.client.delete(url, headers=self.headers())

    def search(self, url: str) -> list[dict[str, Any]]:
        """The matched resources of a searchset (asserts 200)."""
        r = self.get(url)
        assert r.status_code == 200, r.get_data(as_text=True)
        return [
            e["resource"] for e in r.get_json().get("entry", []) if e["search"]["mode"] == "match"
        ]


@pytest.fixture
def api(client: FlaskClient, tokens: dict[str, str]) -> Api:
    """An mpe (medical physics expert) client: may read and write everything but users."""
    return Api(client, tokens["mpe"])


@pytest.fixture
def as_role(client: FlaskClient, tokens: dict[str, str]) -> Any:
    return lambda name: Api(client, tokens.get(name, name))


def load(name: str) -> Any:
    return orjson.loads((DATA / name).read_bytes())


@contextmanager
def kerma_serve(
    data_dir: Path, ready: Callable[[], bool], **settings: str
) -> Iterator[subprocess.Popen[bytes]]:
    """`kerma serve` in its own process (a crash test kills it), up once `ready()` says so."""
    # one HTTP process: these tests are about what serve does, not how many cores answer
    # (tests/ops/test_serve.py starts it with several); spawning more costs seconds under load
    env = {**os.environ, "KERMA_DATA_DIR": str(data_dir), "KERMA_LOG_LEVEL": "WARNING",
           "KERMA_HTTP_PROCESSES": "1"}  # fmt: skip
    env.update({f"KERMA_{k.upper()}": v for k, v in settings.items()})
    kerma = Path(sys.executable).parent / "kerma"
    # a group of its own: a crash test kills all its processes (os.killpg)
    process = subprocess.Popen([str(kerma), "serve"], env=env, stderr=subprocess.DEVNULL,
                               start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("kerma serve did not come up")
            time.sleep(0.05)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(30)
