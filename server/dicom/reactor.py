"""How accepted associations run: waiting for work instead of polling, after HTTP.

pynetdicom 3.0 runs two threads per association, and both poll: the DUL reactor sleeps 1 ms
whenever its socket and queues are empty, the association reactor sleeps 1 ms between looks at
its DIMSE queue. Every wake takes the interpreter lock, so 20 open associations cost three
quarters of a core while nothing is sent (7 % with this module), taken from HTTP and storing.
When an association is accepted, before its threads start (EVT_CONN_OPEN), its DUL, DIMSE
provider and their queues become the subclasses below: the idle sleeps wait on the socket and
on every queue they read (a put rings them) for at most IDLE_WAIT_S, and the sleeps the
reactors still take after such a wait are skipped (_Clock): under load each of them cost a
sender 2-4 ms waiting for the interpreter lock. What the reactors then do is pynetdicom's own
code, unchanged; pyproject pins pynetdicom, and tests/dicom/test_reactor.py fails if these
internals move.

Under load, a search that a person waits for can go before the next object of a sender that
waits for nobody (a modality queues and retries; a dose report is read minutes later): the
threads of an association run at the nice value KERMA_DICOM_NICE sets (they inherit it from the
thread that accepts it), HTTP at 0 and the spool worker at 10.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import queue
import select
import socket
import threading
import time
import types
from collections.abc import Callable
from typing import Any

import pynetdicom.association
import pynetdicom.dul
from pynetdicom import evt
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dul import DULServiceProvider
from pynetdicom.events import Event
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.presentation import PresentationContext
from pynetdicom.transport import ThreadedAssociationServer

from server.dicom.store_request import store_request
from server.dicom.store_response import store_response_command

# How late a timer (ARTIM, the idle timeout) or a stopped peer thread may be noticed.
IDLE_WAIT_S = 0.05


class _Bell:
    """A socketpair that other threads ring and one thread waits on, with its socket.

    Rung only while its thread listens (from before it last looks at its queues until it has
    waited): a ring is a system call, which gives up the interpreter lock and, while other
    associations run, waits for it again. The thread sets `listening` before it looks and
    a ringer puts before it reads `listening` (the interpreter lock orders both), so either
    the thread sees the put or the put rings."""

    def __init__(self) -> None:
        self._ear, self._hammer = socket.socketpair()
        self._ear.setblocking(False)
        self._hammer.setblocking(False)
        self.listening = False

    def ring(self) -> None:
        if not self.listening:
            return
        with contextlib.suppress(OSError):  # already ringing (buffer full), or closed
            self._hammer.send(b"\0")

    def _silence(self) -> None:
        with contextlib.suppress(OSError):  # nothing left to read
            while self._ear.recv(4096):
                pass

    def wait(self, also: socket.socket | None, timeout_s: float) -> None:
        """Until rung, `also` is readable or `timeout_s`; a ring that came late (after the
        thread stopped listening) only wakes the next wait early."""
        watched = [self._ear] if also is None or also.fileno() < 0 else [self._ear, also]
        try:
            readable = select.select(watched, [], [], timeout_s)[0]
        except (OSError, ValueError):  # the peer's socket closed meanwhile
            readable = select.select([self._ear], [], [], timeout_s)[0]
        if self._ear in readable:
            self._silence()

    def close(self) -> None:
        self._ear.close()
        self._hammer.close()


class _RingingQueue(queue.Queue):  # type: ignore[type-arg]
    """A queue whose every put rings: `_put` is the hook `queue.Queue` offers subclasses."""

    ring: Callable[[], None]

    def _put(self, item: Any) -> None:
        super()._put(item)
        self.ring()


class _WaitingDul(DULServiceProvider):
    _bell: _Bell
    _stopping: bool
    _work: threading.Event  # the association reactor's

    @property
    def _run_loop_delay(self) -> float:
        """Read by the reactor when it found nothing to do, before sleeping that long: the
        wait happens here, and ends as soon as the socket or a queue has something."""
        if threading.current_thread() is not self:
            return 0.001  # stop_dul's wait for this thread to end, from another thread
        self._bell.listening = True  # then look: a put from now on rings
        try:
            if self.to_provider_queue.empty() and self.event_queue.empty() and not self._stopping:
                raw = self.socket.socket if self.socket is not None else None
                self._bell.wait(raw, IDLE_WAIT_S)
        finally:
            self._bell.listening = False
        return 0.0  # which the reactor then sleeps: _Clock makes that no sleep

    @_run_loop_delay.setter
    def _run_loop_delay(self, value: float) -> None:
        pass  # pynetdicom's 1 ms; this class waits instead

    @property
    def _kill_thread(self) -> bool:
        return self._stopping

    @_kill_thread.setter
    def _kill_thread(self, value: bool) -> None:
        self._stopping = value
        if value:
            self._bell.ring()

    def run(self) -> None:
        try:
            super().run()  # the target pynetdicom gave the thread: its reactor
        finally:
            self._bell.close()
            self._work.set()  # the association reactor sees this thread has ended


class _WaitingDimse(DIMSEServiceProvider):
    _work: threading.Event
    _storing: tuple[int, C_STORE, io.BytesIO] | None  # a C-STORE request whose dataset comes

    def receive_primitive(self, primitive: P_DATA) -> None:
        """A C-STORE request whose command set comes whole in a P-DATA of its own (as dcmtk
        and pynetdicom send it) is read by store_request.py and its dataset gathered here;
        anything else, or while a handler narrates EVT_DIMSE_RECV, pynetdicom's way."""
        if self._storing is not None:
            self._gather(primitive.presentation_data_value_list)
            return
        pdvs = primitive.presentation_data_value_list
        if (
            self.message is None
            and len(pdvs) == 1
            and pdvs[0][1][:1] == _LAST_COMMAND_FRAGMENT
            and not self.assoc.get_handlers(evt.EVT_DIMSE_RECV)
        ):
            context_id, data = pdvs[0]
            request = store_request(data[1:])
            if request is not None:
                self._storing = (context_id, request, io.BytesIO())
                return
        super().receive_primitive(primitive)

    def _gather(self, pdvs: list[tuple[int, bytes]]) -> None:
        assert self._storing is not None
        context_id, request, dataset = self._storing
        for _, data in pdvs:
            if data[0] & _COMMAND:  # a command before the dataset ended: a broken peer
                self._storing = None
                self.dul.event_queue.put("Evt19")  # A-P-ABORT, as pynetdicom answers it
                return
            dataset.write(data[1:])
            if data[0] & _LAST:
                request.DataSet = dataset
                request._context_id = context_id
                self._storing = None
                self.msg_queue.put((context_id, request))
                return

    def get_msg(self, block: bool = False) -> Any:
        """The acceptor reactor's look at its queue, every loop: when neither a DIMSE message
        nor an ACSE primitive (release, abort) is waiting, wait for one."""
        if not block:
            self._work.clear()
            dul = self.assoc.dul
            if self.msg_queue.empty() and dul.to_user_queue.empty() and dul.is_alive():
                self._work.wait(IDLE_WAIT_S)
        return super().get_msg(block)

    def send_msg(self, primitive: Any, context_id: int) -> None:
        """A plain C-STORE response goes out as one P-DATA with its command set written by
        store_response.py; any other message, or one that must be narrated (a handler bound
        to EVT_DIMSE_SENT: logging at DEBUG), pynetdicom's way."""
        command = (
            store_response_command(primitive)
            if isinstance(primitive, C_STORE) and primitive.MessageIDBeingRespondedTo is not None
            else None
        )
        limit = self.maximum_pdu_size
        if (
            command is None
            or (limit and len(command) > limit - _PDV_HEADER_BYTES)
            or self.assoc.get_handlers(evt.EVT_DIMSE_SENT)
        ):
            super().send_msg(primitive, context_id)
            return
        pdata = P_DATA()
        pdata.presentation_data_value_list.append((context_id, _LAST_COMMAND_FRAGMENT + command))
        self.dul.send_pdu(pdata)


_COMMAND, _LAST = 0x01, 0x02  # bits of a PDV's message control header (PS3.8 E.2)
_PDV_HEADER_BYTES = 6  # item length and context ID; what pynetdicom keeps free of a PDU
_LAST_COMMAND_FRAGMENT = bytes([_COMMAND | _LAST])  # a whole command set's header byte


class _Clock(types.ModuleType):
    """`time` as pynetdicom's DUL and association modules call it, but a waiting association's
    threads skip the sleeps their reactors take after this module has waited for work: the
    DUL's sleep of the 0 s `_run_loop_delay` returned, the acceptor's 1 ms poll before
    get_msg waits. Each sleep gives up the interpreter lock and, while other associations
    run, waits for it again: 2-4 ms a sleep with 8 associations sending, two or three sleeps
    an object, each one on a sender's critical path."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        me = threading.current_thread()
        if seconds == 0 and isinstance(me, _WaitingDul):
            return
        if seconds == _ACCEPTOR_POLL_S and isinstance(getattr(me, "dimse", None), _WaitingDimse):
            return
        time.sleep(seconds)


_ACCEPTOR_POLL_S = 0.001  # Association._run_reactor's sleep, its only one of 1 ms
for _module in (pynetdicom.dul, pynetdicom.association):
    _module.time = _Clock("time")  # type: ignore[attr-defined]


def _wait_for_work(event: Event) -> None:
    assoc = event.assoc
    if not assoc.is_acceptor or assoc.is_alive():
        return  # only before the acceptor's threads start can their classes change
    work, bell = threading.Event(), _Bell()
    stopping = assoc.dul.__dict__.pop("_kill_thread", False)  # the property takes it over
    dul: _WaitingDul = _become(assoc.dul, _WaitingDul)
    dul._bell, dul._stopping, dul._work = bell, stopping, work
    dimse: _WaitingDimse = _become(assoc.dimse, _WaitingDimse)
    dimse._work, dimse._storing = work, None
    for waiting, ring in (
        (dul.to_provider_queue, bell.ring),
        (dul.event_queue, bell.ring),
        (dul.to_user_queue, work.set),
        (dimse.msg_queue, work.set),
    ):
        _become(waiting, _RingingQueue).ring = ring


class _CopiedCheaply(PresentationContext):
    """A context the server supports, of which pynetdicom deep-copies every one for each
    association it accepts: the copies share the transfer syntaxes' UIDs (immutable strings)
    instead of rebuilding them, 35 storage classes x 45 syntaxes, 8.5 ms of every association
    (of every object, where a modality sends one per association)."""

    def __deepcopy__(self, memo: dict[int, Any]) -> _CopiedCheaply:
        twin = copy.copy(self)
        twin._transfer_syntax = list(self._transfer_syntax)  # negotiation may change it
        return twin


def copy_contexts_cheaply(server: ThreadedAssociationServer) -> None:
    for context in server.contexts:
        _become(context, _CopiedCheaply)


def _become(instance: object, subclass: type) -> Any:
    """The same object, now of a subclass of its class (which adds behaviour, not layout)."""
    assert isinstance(instance, subclass.__mro__[1])
    instance.__class__ = subclass
    return instance


def after_http(event: Event, nice: int) -> None:
    """EVT_CONN_OPEN, in the thread that accepted the connection, before it starts the
    association's threads (they inherit its nice value)."""
    me = threading.get_native_id()
    with contextlib.suppress(OSError):  # a platform without per-thread priorities
        os.setpriority(os.PRIO_PROCESS, me, max(os.getpriority(os.PRIO_PROCESS, me), nice))


WAIT_FOR_WORK = (evt.EVT_CONN_OPEN, _wait_for_work)
