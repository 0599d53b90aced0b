"""Accepted associations wait for work instead of polling, and run after HTTP (reactor.py)."""

from __future__ import annotations

import inspect
import os
import threading
import time
from collections.abc import Iterator

import pydicom
import pynetdicom.association
import pynetdicom.dul
import pytest
from pynetdicom.association import Association
from pynetdicom.dul import DULServiceProvider

from server.config import Settings
from server.dicom import reactor
from server.dicom.status import Status
from server.network import DicomListener
from tests.dicom.conftest import SIEMENS_CT, Connect, wait_until


def _accepted(listener: DicomListener) -> list[Association]:
    return [t for t in threading.enumerate() if isinstance(t, Association) and t.is_acceptor]


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every idle wait of the accepted associations' two threads, by kind."""
    seen: list[str] = []
    bell_wait, get_msg = reactor._Bell.wait, reactor._WaitingDimse.get_msg

    def counted_bell(self: reactor._Bell, *args: object) -> None:
        seen.append("dul")
        bell_wait(self, *args)  # type: ignore[arg-type]

    def counted_get(self: reactor._WaitingDimse, block: bool = False) -> object:
        seen.append("association")
        return get_msg(self, block)

    monkeypatch.setattr(reactor._Bell, "wait", counted_bell)
    monkeypatch.setattr(reactor._WaitingDimse, "get_msg", counted_get)
    yield seen


def test_the_internals_it_relies_on_are_still_there() -> None:
    """pynetdicom's reactors as reactor.py reads them; an upgrade that moves them fails here."""
    dul_loop = inspect.getsource(DULServiceProvider.run_reactor)
    assert "time.sleep(self._run_loop_delay)" in dul_loop
    assert "if self._kill_thread:" in dul_loop
    assert "self.to_provider_queue" in inspect.getsource(DULServiceProvider._process_recv_primitive)
    acceptor_loop = inspect.getsource(Association._run_reactor)
    assert "time.sleep(0.001)" in acceptor_loop
    assert "self.dimse.get_msg(block=False)" in acceptor_loop
    # the only 1 ms sleep of pynetdicom.association, which _Clock skips for waiting acceptors
    assert inspect.getsource(pynetdicom.association).count("time.sleep(0.001)") == 1
    for module in (pynetdicom.dul, pynetdicom.association):
        assert "\nimport time\n" in inspect.getsource(module)
        assert isinstance(module.time, reactor._Clock)  # type: ignore[attr-defined]


def test_accepted_associations_store_without_sleeping(
    connect: Connect, listener: DicomListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Their threads wait for the socket or a queue, then work: no sleep between (each gave
    up the interpreter lock and waited for it again, on the sender's time)."""
    slept: list[float] = []
    real_sleep = time.sleep

    def counted(seconds: float) -> None:
        if any(t is threading.current_thread() for a in _accepted(listener) for t in (a, a.dul)):
            slept.append(seconds)
        real_sleep(seconds)

    ds = pydicom.dcmread(SIEMENS_CT)
    assoc = connect()
    assert assoc.send_c_store(ds).Status == Status.SUCCESS  # the threads run
    monkeypatch.setattr(time, "sleep", counted)
    for _ in range(20):
        assert assoc.send_c_store(ds).Status == Status.SUCCESS
    monkeypatch.undo()
    assert slept == []  # before: a 0 s and a 1 ms sleep per object at least
    assoc.release()


def test_idle_associations_wake_a_few_times_a_second_not_a_thousand(
    connect: Connect, listener: DicomListener, waits: list[str]
) -> None:
    opened = [connect() for _ in range(3)]
    assert all(a.is_established for a in opened)
    wait_until(lambda: len(_accepted(listener)) == 3)
    time.sleep(0.2)
    waits.clear()
    time.sleep(1.0)
    assert all(type(a.dul) is reactor._WaitingDul for a in _accepted(listener))
    per_thread_per_s = {kind: waits.count(kind) / 3 for kind in ("dul", "association")}
    assert min(per_thread_per_s.values()) >= 1, per_thread_per_s  # waiting, not polling
    # polling: about 1,000 each; waiting: at most 1 / IDLE_WAIT_S = 20
    assert per_thread_per_s["dul"] <= 25, per_thread_per_s
    assert per_thread_per_s["association"] <= 25, per_thread_per_s
    assert opened[0].send_c_echo().Status == Status.SUCCESS  # and they still answer at once


def test_stores_releases_and_aborts_end_as_before(
    connect: Connect, listener: DicomListener
) -> None:
    ds = pydicom.dcmread(SIEMENS_CT)
    assoc = connect()
    for _ in range(5):
        assert assoc.send_c_store(ds).Status == Status.SUCCESS
    assoc.release()
    assert assoc.is_released
    wait_until(lambda: not _accepted(listener), seconds=5)
    aborted = connect()
    wait_until(lambda: len(_accepted(listener)) == 1, seconds=5)
    aborted.abort()
    wait_until(lambda: not _accepted(listener), seconds=5)


def test_each_association_negotiates_on_copies_of_the_contexts(
    connect: Connect, listener: DicomListener
) -> None:
    assoc = connect()
    assert assoc.is_established
    wait_until(lambda: len(_accepted(listener)) == 1)
    (association,) = _accepted(listener)
    accepted = association.acceptor.supported_contexts
    served = {c.abstract_syntax: c for c in association._server.contexts}
    assert len(accepted) == len(served) > 30
    for context in accepted:  # the same syntaxes, in lists of their own
        original = served[context.abstract_syntax]
        assert context is not original and context.transfer_syntax == original.transfer_syntax
        assert context._transfer_syntax is not original._transfer_syntax
    assoc.release()


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="per-thread priorities: Linux")
def test_association_threads_run_after_http(
    connect: Connect, listener: DicomListener, dicom_settings: Settings
) -> None:
    assert dicom_settings.dicom_nice == 5  # the default
    assert connect().is_established
    wait_until(lambda: len(_accepted(listener)) == 1)
    [assoc] = _accepted(listener)
    for thread in (assoc, assoc.dul):
        assert thread.native_id is not None
        assert os.getpriority(os.PRIO_PROCESS, thread.native_id) == dicom_settings.dicom_nice
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == 0  # HTTP's, untouched
