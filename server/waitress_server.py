"""waitress as Kerma serves HTTP with it: its server on one bound socket, whose connections do
not wake the I/O thread while a worker thread is sending their answer.

waitress's I/O thread asks every connection, each time round its select() loop, whether it has
output to write. A worker thread writing an answer puts it in the connection's buffer and sends
it at once, holding the buffer's lock, with the GIL released during send(); meanwhile the
connection says it has output, so select() returns at once, the I/O thread cannot take the lock
and goes round again. With one client that window is never looked at (the I/O thread sleeps in
select() until a request or the end of one wakes it); with several, the I/O thread is awake for
the others and spins in it: one process, 8 clients, 4.3-4.9 select() calls a search instead of
2 with one client. A connection whose answer is being sent by its worker now says it has
nothing to write: 1.35-1.41 calls a search (bench/README.md; on 2 processes the throughput
moved within the machine's noise). Nothing waits on it: a worker that leaves output unsent (a
slow client, a full socket buffer), or waits for the I/O thread to send (past the high
watermark), releases the lock and pulls the trigger, which wakes the I/O thread to look again.
"""

from __future__ import annotations

import socket
from typing import Any

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher


class Channel(HTTPChannel):  # type: ignore[misc]
    def writable(self) -> bool:
        if not super().writable():
            return False
        if not self.requests:  # no worker: the I/O thread sends
            return True
        if self.outbuf_lock.acquire(blocking=False):  # its worker is not sending now
            self.outbuf_lock.release()
            return True
        return False


class Server(TcpWSGIServer):  # type: ignore[misc]
    channel_class = Channel


def server_on(
    app: Any, listening: socket.socket, threads: int, kind: type[Server] = Server, **kw: Any
) -> Any:
    """What waitress.create_server makes of one bound socket, of class `kind` (given `kw`)."""
    adjustments = Adjustments(sockets=[listening], threads=threads, ident="kerma")
    tasks = ThreadedTaskDispatcher()
    tasks.set_thread_count(threads)
    where = (listening.family, listening.type, listening.proto, listening.getsockname())
    return kind(app, {}, True, listening, dispatcher=tasks, adj=adjustments, bind_socket=False,
                sockinfo=where, **kw)  # fmt: skip
