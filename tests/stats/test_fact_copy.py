"""The statistics' columnar copy of the dose facts on disk (server/stats/snapshot.py): mapped
by every process, kept across restarts, brought up to date from the store's change log, and
never read through for another store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from server.dose.facts import DoseFact
from server.stats import columns as columns_module
from server.stats.columns import FactColumns, key_of
from server.store.sqlite import SqliteStore


def _write(store: SqliteStore, studies: range, ctdivol_mgy: float) -> None:
    """Each study: two CT events of `ctdivol_mgy` + its number, on device ct<n % 3>."""
    with store.transaction() as tx:
        for n in studies:
            uid = f"2.25.{n}"
            tx.replace_facts(uid, [
                DoseFact(f"event:{uid}:{i}", "event", uid, f"Observation/{n}-{i}", "CT",
                         patient=f"Patient/p{n % 5}", device=f"Device/ct{n % 3}", date=1e9 + n,
                         ctdivol_mgy=ctdivol_mgy + n)
                for i in range(2)
            ])  # fmt: skip


def _rows(facts: FactColumns) -> list[tuple[Any, ...]]:
    """(study digest, device label, CTDIvol) of every row, sorted."""
    columns, labels = facts.current()
    devices = [labels["device"][c] for c in columns["device"]]
    return sorted(zip(columns["study_uid"].tolist(), devices, columns["ctdivol_mgy"].tolist(),
                      strict=True))  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    store = SqliteStore(tmp_path / "kerma.sqlite3")
    _write(store, range(10), 5.0)
    return store


def test_the_copy_is_mapped_from_disk_and_a_second_process_reads_no_rows(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = FactColumns(store, "event", tmp_path / "facts")
    rows = _rows(first)
    assert len(rows) == 20 and rows == _rows(FactColumns(store, "event"))  # as built in memory
    assert rows[0] == (min(key_of(f"2.25.{n}") for n in range(10)), rows[0][1], rows[0][2])
    columns, _ = first.current()
    assert isinstance(columns["ctdivol_mgy"], np.memmap)  # in the page cache, not the heap
    assert sorted(p.name for p in (tmp_path / "facts" / "event").iterdir()) == [
        ".lock",
        str(store.fact_version()),
    ]

    def no_reading(*args: object) -> None:
        raise AssertionError("the copy on disk should have been mapped")

    monkeypatch.setattr(store, "fact_column_batches", no_reading)
    assert _rows(FactColumns(store, "event", tmp_path / "facts")) == rows


def test_studies_written_since_replace_their_rows(store: SqliteStore, tmp_path: Path) -> None:
    facts = FactColumns(store, "event", tmp_path / "facts")
    facts.current()
    _write(store, range(8, 12), 50.0)  # two studies again with new values, two new ones
    rows = _rows(facts)
    assert rows == _rows(FactColumns(store, "event"))
    values = sorted(v for _, _, v in rows)
    assert values == sorted([5.0 + n for n in range(8)] * 2 + [50.0 + n for n in range(8, 12)] * 2)
    restarted = FactColumns(store, "event", tmp_path / "facts")  # the old copy + the changes
    assert _rows(restarted) == rows
    assert facts.code("patient", "Patient/p1") == key_of("Patient/p1")


def test_many_writes_make_a_new_copy_that_other_processes_take_up(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(columns_module, "_REBUILD_ROWS", 10)
    one, other = (FactColumns(store, "event", tmp_path / "facts") for _ in range(2))
    one.current(), other.current()
    first = store.fact_version()
    _write(store, range(10, 16), 7.0)  # 12 rows kept beside the copy: more than 10
    rows = _rows(one)
    latest = store.fact_version()
    assert [p.name for p in (tmp_path / "facts" / "event").iterdir() if p.name != ".lock"] == [
        str(latest)
    ]
    assert latest > first
    columns, _ = other.current()  # maps the newer copy rather than keep its own rows beside
    assert isinstance(columns["date"], np.memmap) and _rows(other) == rows
    assert len(rows) == 32


def test_a_copy_from_another_store_is_not_used(store: SqliteStore, tmp_path: Path) -> None:
    FactColumns(store, "event", tmp_path / "facts").current()
    restored = SqliteStore(tmp_path / "other.sqlite3")  # say, a backup put back
    _write(restored, range(40, 60), 1.0)  # more writes than the copy's version: not enough
    assert restored.fact_version() >= store.fact_version()
    rows = _rows(FactColumns(restored, "event", tmp_path / "facts"))
    assert rows == _rows(FactColumns(restored, "event")) and len(rows) == 40


def test_the_study_level_keeps_the_uid_and_patient_text(store: SqliteStore, tmp_path: Path) -> None:
    with store.transaction() as tx:
        tx.replace_facts("2.25.7", [DoseFact("study:2.25.7", "study", "2.25.7", "Observation/s7",
                                             "CT", patient="Patient/p2", date=1e9, dlp_mgy_cm=80.0)])  # fmt: skip
    columns, _ = FactColumns(store, "study", tmp_path / "facts").current()
    assert columns["study_uid_text"].tolist() == [b"2.25.7"]
    assert columns["patient_text"].tolist() == [b"Patient/p2"]
    assert columns["patient"].tolist() == [key_of("Patient/p2")]
    assert "study_uid_text" not in FactColumns(store, "event").current()[0]


def test_an_empty_store_has_an_empty_copy_until_facts_come(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "kerma.sqlite3")
    facts = FactColumns(store, "event", tmp_path / "facts")
    assert _rows(facts) == []
    _write(store, range(2), 5.0)
    assert [v for _, _, v in _rows(facts)] == [5.0, 5.0, 6.0, 6.0]
