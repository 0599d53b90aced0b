"""A columnar copy of the dose facts in memory, for statistics over millions of rows: numbers
as float arrays, words (device, procedure, protocol...) as integer codes with their labels.

Reading a million rows out of SQLite takes seconds (every value becomes a Python object);
a grouped table over arrays takes a fraction of one. The copy is kept current from the
store's change log: before each use only the studies written since are read again.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from server.store.port import Store

WORDS = (
    "study_uid",
    "patient",
    "modality",
    "device",
    "procedure",
    "protocol",
    "body_region",
    "acquisition_type",
)
NUMBERS = (
    "date", "age_years", "weight_kg", "ctdivol_mgy", "dlp_mgy_cm", "ssde_mgy", "dap_gy_m2",
    "dose_rp_gy", "agd_mgy", "exposure_index", "fluoro_time_s", "kvp_kv", "tube_current_ma",
    "exposure_mas", "pitch_factor", "collimation_mm",
)  # fmt: skip
_ALL = -np.inf, np.inf


class FactColumns:
    """The rows of one level ("event" or "study")."""

    def __init__(self, store: Store, level: str) -> None:
        self._store = store
        self._level = level
        self._lock = threading.Lock()
        self._version: int | None = None
        self._columns: dict[str, npt.NDArray[Any]] = {}
        self._labels: dict[str, list[str | None]] = {w: [] for w in WORDS}
        self._codes: dict[str, dict[str | None, int]] = {w: {} for w in WORDS}

    def current(self) -> tuple[dict[str, npt.NDArray[Any]], dict[str, list[str | None]]]:
        """The columns (words as codes) and the label of each code, brought up to date."""
        with self._lock:
            if self._version is None:
                self._version = self._store.fact_version()  # before reading: nothing is missed
                self._columns = self._read(None)
            else:
                self._version, changed = self._store.fact_changes(self._version)
                if changed:
                    self._replace(changed)
            return dict(self._columns), {w: list(v) for w, v in self._labels.items()}

    def code(self, word: str, label: str) -> int | None:
        """The code of a label in a word column (None: no row has it)."""
        with self._lock:
            return self._codes[word].get(label)

    def _replace(self, studies: list[str]) -> None:
        codes = [self._codes["study_uid"][s] for s in studies if s in self._codes["study_uid"]]
        keep = ~np.isin(self._columns["study_uid"], codes)
        fresh = self._read(studies)
        self._columns = {
            name: np.concatenate([column[keep], fresh[name]])
            for name, column in self._columns.items()
        }

    def _read(self, studies: Sequence[str] | None) -> dict[str, npt.NDArray[Any]]:
        found = self._store.fact_columns(self._level, [*WORDS, *NUMBERS], *_ALL, studies)
        columns: dict[str, npt.NDArray[Any]] = {}
        for name in NUMBERS:
            values = found[name]
            columns[name] = np.fromiter(
                (np.nan if v is None else v for v in values), np.float64, len(values)
            )
        for name in WORDS:
            index, labels = self._codes[name], self._labels[name]
            for label in dict.fromkeys(found[name]):
                if label not in index:
                    index[label] = len(labels)
                    labels.append(label)
            columns[name] = np.fromiter((index[v] for v in found[name]), np.int64, len(found[name]))
        return columns
