"""Ingest many files: DICOM is parsed in worker processes while this process commits.

The store has one writer, so commits stay in this process, in file order; parsing runs ahead
in a process pool, a bounded number of files at a time. `workers` counts every process that
works: 1 reads and stores inline, N > 1 adds N - 1 parsers beside this process (on a 2-core
machine, 2 keeps both cores busy; more only makes them take turns).
"""

from __future__ import annotations

import warnings
from collections import Counter, deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TypeVar

from server.dicom.read import Outcome, read_dicom
from server.ingest.pipeline import Ingestor, Result
from server.logs import library_of, warning_text
from server.mappings import unit_table

T = TypeVar("T")

_AHEAD_PER_WORKER = 16


def ingest_files(
    ingestor: Ingestor,
    paths: Iterable[Path],
    workers: int,
    on_result: Callable[[Path, Result], None],
) -> None:
    """Each file's Result, with the library warnings its reading raised summed up (`warned`)."""
    if workers <= 1:
        for path in paths:
            result, warned = _recorded(partial(_guarded, ingestor, path, ingestor.ingest_file))
            on_result(path, replace(result, warned=warned))
        return
    parsers = workers - 1
    with ProcessPoolExecutor(max_workers=parsers) as pool:
        pending: deque[tuple[Path, Future[tuple[Outcome, str]]]] = deque()
        for path in paths:
            pending.append((path, pool.submit(_read, path)))
            if len(pending) >= parsers * _AHEAD_PER_WORKER:
                _commit_next(ingestor, pending, on_result)
        while pending:
            _commit_next(ingestor, pending, on_result)


def _commit_next(
    ingestor: Ingestor,
    pending: deque[tuple[Path, Future[tuple[Outcome, str]]]],
    on_result: Callable[[Path, Result], None],
) -> None:
    path, future = pending.popleft()
    outcome, warned = future.result()
    result = _guarded(ingestor, path,
                      lambda p: ingestor.ingest_outcome(outcome, p.read_bytes, p.name))  # fmt: skip
    on_result(path, replace(result, warned=warned))


def _guarded(ingestor: Ingestor, path: Path, work: Callable[[Path], Result]) -> Result:
    """One file's result; a file that breaks the pipeline goes to quarantine with the error
    instead of ending the batch (a count beyond 64 bits once did), unless the store is down."""
    try:
        return work(path)
    except Exception as e:  # a reader or mapping bug on a hostile file
        if not ingestor.store_answers():
            raise
        reason = f"processing failed: {type(e).__name__}: {e}"
        ingestor.quarantine.put(path.read_bytes(), path.name, reason)
        return Result("quarantined", path.name, reason=reason)


def _read(path: Path) -> tuple[Outcome, str]:
    return _recorded(partial(read_dicom, path, unit_table()))


def _recorded(work: Callable[[], T]) -> tuple[T, str]:
    """What `work` returns, and its library warnings in one line: how many, from which
    library, the commonest (a file with a thousand bad values is one line, not a thousand)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = work()
    if not caught:
        return value, ""
    kinds = Counter((library_of(w.filename), warning_text(w.message)) for w in caught)
    (library, text), _ = kinds.most_common(1)[0]
    more = f" (and {len(kinds) - 1} other kinds)" if len(kinds) > 1 else ""
    return value, f"{len(caught)} warnings from {library}: {text}{more}"
