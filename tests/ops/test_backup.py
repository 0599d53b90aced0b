"""`kerma backup` of a store that is being written, and `kerma restore`: the restored store is
the live store as it was at one moment (every resource version in it equal to the live one,
every study whole), never a mix."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from pydicom import dcmread

from server.config import Settings
from server.ingest import build_ingestor
from server.ops.backup import BackupError, backup, restore
from server.site import build_service
from server.store.sqlite import SqliteStore
from tests.dicom.conftest import CORPUS

KERMA = str(Path(sys.executable).parent / "kerma")


def _one_file_per_study(count: int) -> list[Path]:
    chosen: dict[str, Path] = {}
    for path in sorted(CORPUS.rglob("*RDSR*.dcm")):
        study = str(dcmread(path, stop_before_pixels=True).StudyInstanceUID)
        chosen.setdefault(study, path)
    assert len(chosen) >= count
    return list(chosen.values())[:count]


def _versions(database: Path) -> dict[tuple[str, str, int], bytes]:
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT r.rtype, r.rid, v.version, v.body FROM resource_version v "
            "JOIN resource r ON r.pk = v.pk"
        ).fetchall()
    return {(rtype, rid, version): body for rtype, rid, version, body in rows}


def _facts(database: Path) -> dict[str, tuple[object, ...]]:
    with sqlite3.connect(database) as db:
        return {row[0]: row for row in db.execute("SELECT * FROM dose_fact")}


@pytest.mark.slow
def test_backup_during_ingestion_restores_to_an_equal_store(tmp_path: Path) -> None:
    live = Settings(data_dir=tmp_path / "live")
    files = _one_file_per_study(16)
    store = SqliteStore(live.sqlite_path)
    ingestor = build_ingestor(store, live)
    for path in files[:3]:
        ingestor.ingest_file(path)
    (live.spool_dir).mkdir(parents=True)
    (live.spool_dir / "00000000000000000001-000000.dcm").write_bytes(files[-1].read_bytes())
    halfway, backed_up = threading.Event(), threading.Event()
    service = build_service(store)

    def write_until_backed_up() -> None:
        """The studies, then patients, one transaction each, until the backup is made."""
        for n, path in enumerate(files[3:-1]):
            ingestor.ingest_file(path)
            if n == 2:
                halfway.set()
        while not backed_up.is_set():
            service.create("Patient", {"resourceType": "Patient", "gender": "unknown"})

    writer = threading.Thread(target=write_until_backed_up)
    writer.start()
    assert halfway.wait(60)
    env = {**os.environ, "KERMA_DATA_DIR": str(live.data_dir)}
    made = subprocess.run([KERMA, "backup", str(tmp_path / "backup")], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    backed_up.set()
    writer.join()
    store.close()
    assert made.returncode == 0, made.stderr
    manifest = json.loads((tmp_path / "backup" / "kerma-backup.json").read_text())
    assert "1 databases and 1 files" in made.stdout and "kerma.sqlite3" in manifest["files"]
    assert "spool/00000000000000000001-000000.dcm" in manifest["files"]

    restored = Settings(data_dir=tmp_path / "restored")
    env = {**os.environ, "KERMA_DATA_DIR": str(restored.data_dir)}
    put_back = subprocess.run([KERMA, "restore", str(tmp_path / "backup")], env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
    assert put_back.returncode == 0, put_back.stderr

    now, then = _versions(live.sqlite_path), _versions(restored.sqlite_path)
    studies = {key[1] for key in then if key[0] == "ImagingStudy"}
    assert 6 <= len(studies) <= 15  # taken while the writer was between its 3rd and 15th
    assert all(now[key] == body for key, body in then.items())  # each version as it was
    assert len(now) > len(then)  # and the writer went on after the snapshot
    # whole studies: each restored study has every resource and dose fact the live one has
    for key in now:
        if key[0] == "ImagingStudy" and key[1] in studies:
            assert key in then
    live_facts, restored_facts = _facts(live.sqlite_path), _facts(restored.sqlite_path)
    assert all(live_facts[k] == row for k, row in restored_facts.items())
    restored_store = SqliteStore(restored.sqlite_path)
    try:
        found = build_service(restored_store).search("ImagingStudy", [("_summary", "count")])
        assert found.total == len(studies)
    finally:
        restored_store.close()
    assert (restored.spool_dir / "00000000000000000001-000000.dcm").exists()


def test_restore_refuses_damage_a_running_server_and_data_in_the_way(tmp_path: Path) -> None:
    live = Settings(data_dir=tmp_path / "live")
    SqliteStore(live.sqlite_path).close()
    (live.data_dir / "token.key").write_text("k" * 64)
    backup(live, tmp_path / "backup")
    with pytest.raises(BackupError, match="not empty"):
        backup(live, tmp_path / "backup")
    target = Settings(data_dir=tmp_path / "target")
    restore(tmp_path / "backup", target)
    with pytest.raises(BackupError, match="holds data; restore with --replace"):
        restore(tmp_path / "backup", target)
    with open(target.data_dir / "kerma-serve.lock", "a") as lock:
        import fcntl

        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(BackupError, match="kerma serve is running"):
            restore(tmp_path / "backup", target, replace=True)
    summary = restore(tmp_path / "backup", target, replace=True)
    assert summary.databases == 1 and summary.files == 1
    assert [p.name for p in target.data_dir.glob("replaced-*/token.key")] == ["token.key"]
    (tmp_path / "backup" / "token.key").write_text("x" * 64)
    with pytest.raises(BackupError, match=r"token\.key differs from its checksum"):
        restore(tmp_path / "backup", Settings(data_dir=tmp_path / "other"))
