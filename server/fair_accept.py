"""HTTP connections shared evenly over the HTTP processes.

Every HTTP process accepts on the one listening socket, but only while it holds no more open
connections than any other process; the counts live in memory the processes share. Left to
the kernel, the split was uneven: on one shared socket the process awake first took nearly all
(47, 45 and 31 of 50 clients in three tries); on a socket each (SO_REUSEPORT, connections
hashed by address) 8 clients split 5/3, 6/2 and once 8/0, and a process with 2 of them left
its core idle a tenth of the time (8 clients searching: 1.55-1.67x one client's rate on two
processes, 1.0x when all 8 went to one).

A process that stops accepting sleeps in poll() without the listening socket; when another
accepts, it rings the sleepers' bells (a pipe each) so that they look at the counts again.
"""

from __future__ import annotations

import contextlib
import os
import socket
from multiprocessing.connection import Connection
from typing import Any

from waitress import wasyncore

from server.waitress_server import Server, server_on

NOT_SERVING = 1 << 30  # a process not (yet, or no longer) accepting: never the fewest


class Shares:
    """What the processes share: a count per process and a bell per process. Made by the
    server before the processes start; each process is given it and its own number."""

    def __init__(self, context: Any, count: int) -> None:
        self.counts = context.RawArray("i", [NOT_SERVING] * count)
        self.bells = [context.Pipe(duplex=False) for _ in range(count)]

    def starting(self, n: int) -> Shares:
        """Process n (re)starts: counted as not serving until it looks at the counts (one
        killed leaves its count behind)."""
        self.counts[n] = NOT_SERVING
        return self


class FairServer(Server):
    """waitress's server, accepting only while this process's connections are the fewest."""

    def __init__(self, *args: Any, shares: Shares, number: int, **kw: Any) -> None:
        self._shares, self._number = shares, number
        super().__init__(*args, **kw)
        _Bell(shares.bells[number][0], self._map)
        for _, writer in shares.bells:
            os.set_blocking(writer.fileno(), False)
        shares.counts[number] = len(self._map)  # serving from here: its share is kept for it

    def readable(self) -> bool:
        if not super().readable():  # waitress's own limits first
            return False
        counts, mine = self._shares.counts, len(self._map)  # the same fixed entries in each
        counts[self._number] = mine
        return all(mine <= other for n, other in enumerate(counts) if n != self._number)

    def handle_accept(self) -> None:
        super().handle_accept()
        mine = len(self._map)
        self._shares.counts[self._number] = mine
        for n, other in enumerate(self._shares.counts):  # those it may be the turn of now
            if n != self._number and other <= mine:
                _ring(self._shares.bells[n][1])

    def run(self) -> None:
        try:
            super().run()
        finally:
            self._shares.counts[self._number] = NOT_SERVING


def fair_server(app: Any, listening: socket.socket, threads: int, shares: Shares,
                number: int) -> FairServer:  # fmt: skip
    """What waitress.create_server makes of one socket, accepting fairly as process `number`."""
    server: FairServer = server_on(app, listening, threads, FairServer, shares=shares,
                                   number=number)  # fmt: skip
    return server


def _ring(bell: Connection) -> None:
    with contextlib.suppress(BlockingIOError):  # rung enough already: not listened to yet
        os.write(bell.fileno(), b"\0")


class _Bell(wasyncore.file_dispatcher):  # type: ignore[misc]
    """The reading end of this process's bell in its poll loop: reading is all there is to do
    (the loop then asks the server whether it accepts)."""

    def __init__(self, reader: Connection, map: dict[int, Any]) -> None:
        super().__init__(reader.fileno(), map)  # a copy of it, not blocking

    def writable(self) -> bool:
        return False

    def handle_read(self) -> None:
        with contextlib.suppress(BlockingIOError):
            self.recv(512)
