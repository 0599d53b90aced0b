"""Ingest many files: DICOM is parsed in worker processes while this process commits.

The store has one writer, so commits stay in this process, in file order; parsing runs ahead
in a process pool, a bounded number of files at a time. `workers` counts every process that
works: 1 reads and stores inline, N > 1 adds N - 1 parsers beside this process (on a 2-core
machine, 2 keeps both cores busy; more only makes them take turns).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from server.dicom.read import Outcome, read_dicom
from server.ingest.pipeline import Ingestor, Result
from server.mappings import unit_table

_AHEAD_PER_WORKER = 16


def ingest_files(
    ingestor: Ingestor,
    paths: Iterable[Path],
    workers: int,
    on_result: Callable[[Path, Result], None],
) -> None:
    if workers <= 1:
        for path in paths:
            on_result(path, ingestor.ingest_file(path))
        return
    parsers = workers - 1
    with ProcessPoolExecutor(max_workers=parsers) as pool:
        pending: deque[tuple[Path, Future[Outcome]]] = deque()
        for path in paths:
            pending.append((path, pool.submit(_read, path)))
            if len(pending) >= parsers * _AHEAD_PER_WORKER:
                _commit_next(ingestor, pending, on_result)
        while pending:
            _commit_next(ingestor, pending, on_result)


def _commit_next(
    ingestor: Ingestor,
    pending: deque[tuple[Path, Future[Outcome]]],
    on_result: Callable[[Path, Result], None],
) -> None:
    path, future = pending.popleft()
    on_result(path, ingestor.ingest_outcome(future.result(), path.read_bytes, path.name))


def _read(path: Path) -> Outcome:
    return read_dicom(path, unit_table())
