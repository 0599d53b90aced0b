"""A columnar copy of the dose facts, for statistics over millions of rows: numbers as float
arrays, words (device, procedure, protocol...) as integer codes with their labels, the study
and the patient of each row as 64-bit digests (found by, never grouped by).

Reading a million rows out of SQLite takes seconds (every value becomes a Python object);
a grouped table over arrays takes a fraction of one. The copy is kept current from the
store's change log: before each use only the studies written since are read again, kept
beside the copy until they are many enough to be worth a new copy. Given a directory, the
copy lives there as mapped files (server/stats/snapshot.py), shared by the processes and
kept across restarts; without one (a test, a one-off job) it is built in memory.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from server.stats.snapshot import Snapshot, Snapshots
from server.store.port import Store

KEYS = ("study_uid", "patient")
WORDS = ("modality", "device", "procedure", "protocol", "body_region", "acquisition_type",
         "category")  # fmt: skip
NUMBERS = (
    "date", "age_years", "weight_kg", "ctdivol_mgy", "dlp_mgy_cm", "ssde_mgy", "dap_gy_m2",
    "dose_rp_gy", "agd_mgy", "exposure_index", "fluoro_time_s", "kvp_kv", "tube_current_ma",
    "exposure_mas", "pitch_factor", "collimation_mm",
)  # fmt: skip
# the study level keeps the keys' text too (the studies page shows them): "<key>_text"
TEXT = {"study_uid": np.dtype("S64"), "patient": np.dtype("S80")}  # a UID, "Patient/" + an id
_BATCH_ROWS = 50_000
# rows written since the copy, kept beside it, before a new copy is made
_REBUILD_ROWS, _REBUILD_SHARE = 20_000, 0.05
_ALL = -np.inf, np.inf

Columns = Mapping[str, npt.NDArray[Any]]


def key_of(text: str | None) -> int:
    """The digest of a study UID or a patient reference, the same in every process (0: none)."""
    if text is None:
        return 0
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


class FactColumns:
    """The rows of one level ("event" or "study")."""

    def __init__(self, store: Store, level: str, directory: Path | None = None) -> None:
        self._store = store
        self._level = level
        self._snapshots = None if directory is None else Snapshots(directory / level)
        self._lock = threading.Lock()
        self._version: int | None = None  # the fact write the copy is current with
        self._base: dict[str, npt.NDArray[Any]] = {}  # the copy (mapped or in memory)
        self._base_version = 0
        self._alive: npt.NDArray[np.bool_] | None = None  # its rows not written since (None: all)
        self._fresh: dict[str, npt.NDArray[Any]] = {}  # the rows of the studies written since
        self._labels: dict[str, list[str | None]] = {w: [] for w in WORDS}
        self._codes: dict[str, dict[str | None, int]] = {w: {} for w in WORDS}

    def current(self) -> tuple[Columns, dict[str, list[str | None]]]:
        """The columns (words as codes) and the label of each code, brought up to date."""
        with self._lock:
            if self._version is None or self._newer_copy():
                self._load()
            assert self._version is not None
            self._version, changed = self._store.fact_changes(self._version)
            if changed:
                self._replace(changed)
            if self._pending() > max(_REBUILD_ROWS, _REBUILD_SHARE * self._rows(self._base)):
                self._rebuild()
            joined = _Joined(self._base, self._alive, self._fresh)
            return joined, {w: list(v) for w, v in self._labels.items()}

    def code(self, name: str, label: str) -> int | None:
        """The code of a label in a word column (None: no row has it); of a key, its digest."""
        if name in KEYS:
            return key_of(label)
        with self._lock:
            return self._codes[name].get(label)

    # -- the copy ----------------------------------------------------------------------------

    def _newer_copy(self) -> bool:
        """Another process wrote a newer copy: map it rather than keep rows beside ours."""
        return self._snapshots is not None and self._snapshots.latest_version() > self._base_version

    def _load(self) -> None:
        if self._snapshots is None:
            version = self._store.fact_version()  # before reading: nothing is missed
            parts = [self._empty(), *self._batches()]
            self._start(version, {n: np.concatenate([p[n] for p in parts]) for n in parts[0]})
            return
        with self._snapshots.locked():
            found = self._snapshots.load()
            if found is None or not self._usable(found):
                found = self._write_copy()
            self._labels = {w: list(found.labels[w]) for w in WORDS}
            self._codes = {w: {label: c for c, label in enumerate(found.labels[w])} for w in WORDS}
            self._start(found.version, found.columns)

    def _write_copy(self) -> Snapshot:
        assert self._snapshots is not None
        self._labels, self._codes = {w: [] for w in WORDS}, {w: {} for w in WORDS}
        version = self._store.fact_version()
        if version == 0:  # nothing written yet: nothing worth a copy on disk
            return Snapshot(0, "", self._empty(), self._labels)
        return self._written(version, self._batches())

    def _rebuild(self) -> None:
        """One copy again, from the copy and the rows kept beside it."""
        if self._snapshots is None:
            joined = _Joined(self._base, self._alive, self._fresh)
            self._start(self._version or 0, {name: joined[name] for name in self._base})
            return
        with self._snapshots.locked():
            found = self._written(self._version or 0, self._current_rows())
            self._start(found.version, found.columns)

    def _written(self, version: int, batches: Iterable[Mapping[str, npt.NDArray[Any]]]) -> Snapshot:
        """A copy on disk of these rows as of `version`, mapped (the caller holds the lock)."""
        assert self._snapshots is not None
        writer = self._snapshots.writer(version, self._anchor(version))
        writer.append(self._empty())  # every column exists, even with no rows
        for batch in batches:
            writer.append(batch)
        writer.finish(self._labels)
        found = self._snapshots.load()
        assert found is not None
        return found

    def _current_rows(self) -> Iterator[Mapping[str, npt.NDArray[Any]]]:
        """The copy's rows not written since, in batches, then the rows written since."""
        for start in range(0, self._rows(self._base), _BATCH_ROWS):
            rows = slice(start, start + _BATCH_ROWS)
            alive = None if self._alive is None else self._alive[rows]
            yield {n: c[rows] if alive is None else c[rows][alive] for n, c in self._base.items()}
        yield self._fresh

    def _start(self, version: int, columns: dict[str, npt.NDArray[Any]]) -> None:
        self._version = self._base_version = version
        self._base, self._alive, self._fresh = columns, None, {}

    def _usable(self, found: Snapshot) -> bool:
        """Made from this store (and with the columns of this version of Kerma)."""
        if found.columns.keys() != self._empty().keys():
            return False
        return found.version <= self._store.fact_version() and (
            self._anchor(found.version) == found.anchor
        )

    def _anchor(self, version: int) -> str:
        """The study written at `version` ("" before the first write)."""
        if version == 0:
            return ""
        _, changed = self._store.fact_changes(version - 1)
        return changed[0] if changed else ""

    def _replace(self, studies: list[str]) -> None:
        keys = np.fromiter((key_of(s) for s in studies), np.int64, len(studies))
        gone = np.isin(self._base["study_uid"], keys)
        if gone.any():
            self._alive = ~gone if self._alive is None else self._alive & ~gone
        found = self._arrays(self._store.fact_columns(self._level, self._fields(), *_ALL, studies))
        if self._fresh:
            kept = ~np.isin(self._fresh["study_uid"], keys)
            found = {n: np.concatenate([self._fresh[n][kept], found[n]]) for n in found}
        self._fresh = found

    def _pending(self) -> int:
        gone = 0 if self._alive is None else int(self._alive.size - np.count_nonzero(self._alive))
        return gone + self._rows(self._fresh)

    # -- reading rows ------------------------------------------------------------------------

    def _batches(self) -> Iterator[dict[str, npt.NDArray[Any]]]:
        for found in self._store.fact_column_batches(self._level, self._fields(), _BATCH_ROWS):
            yield self._arrays(found)

    def _fields(self) -> list[str]:
        return [*KEYS, *WORDS, *NUMBERS]

    def _empty(self) -> dict[str, npt.NDArray[Any]]:
        return self._arrays({name: [] for name in self._fields()})

    def _arrays(self, found: dict[str, list[Any]]) -> dict[str, npt.NDArray[Any]]:
        rows = len(found["date"])
        columns: dict[str, npt.NDArray[Any]] = {}
        for name in KEYS:
            digests = {v: key_of(v) for v in dict.fromkeys(found[name])}
            columns[name] = np.fromiter((digests[v] for v in found[name]), np.int64, rows)
            if self._level == "study":
                texts = [(v or "").encode() for v in found[name]]
                columns[f"{name}_text"] = np.array(texts, dtype=TEXT[name])
        for name in WORDS:
            index, labels = self._codes[name], self._labels[name]
            for label in dict.fromkeys(found[name]):
                if label not in index:
                    index[label] = len(labels)
                    labels.append(label)
            columns[name] = np.fromiter((index[v] for v in found[name]), np.int32, rows)
        for name in NUMBERS:
            values = found[name]
            columns[name] = np.fromiter(
                (np.nan if v is None else v for v in values), np.float64, rows
            )
        return columns

    @staticmethod
    def _rows(columns: Mapping[str, npt.NDArray[Any]]) -> int:
        return len(columns["date"]) if columns else 0


class _Joined(Mapping[str, npt.NDArray[Any]]):
    """The copy's rows still current, then the rows written since; a column is joined when a
    query first asks for it (a query touches a few of the 30), and only for that query."""

    def __init__(self, base: dict[str, npt.NDArray[Any]], alive: npt.NDArray[np.bool_] | None,
                 fresh: dict[str, npt.NDArray[Any]]) -> None:  # fmt: skip
        self._base, self._alive, self._fresh = base, alive, fresh
        self._joined: dict[str, npt.NDArray[Any]] = {}

    def __getitem__(self, name: str) -> npt.NDArray[Any]:
        if name not in self._joined:
            column = self._base[name] if self._alive is None else self._base[name][self._alive]
            self._joined[name] = (
                np.concatenate([column, self._fresh[name]]) if self._fresh else column
            )
        return self._joined[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._base)

    def __len__(self) -> int:
        return len(self._base)
