"""Two HTTP 'processes' (two FairServers in this process, each its own poll loop, driven by
hand) on one listening socket: the connections are shared evenly, a process that stopped
accepting is woken when it is its turn, and one not serving never holds the others back."""

from __future__ import annotations

import multiprocessing
import select
import socket
from collections.abc import Iterator

import pytest
from waitress import wasyncore
from waitress.channel import HTTPChannel

from server.fair_accept import NOT_SERVING, FairServer, Shares, fair_server
from server.processes import listen_on


def _app(environ: object, start_response: object) -> list[bytes]:
    raise AssertionError("no request is sent")


@pytest.fixture
def listening() -> Iterator[socket.socket]:
    sock = listen_on(socket.AF_INET, ("127.0.0.1", 0))
    yield sock
    sock.close()


def _servers(listening: socket.socket, shares: Shares) -> list[FairServer]:
    return [fair_server(_app, listening, 1, shares, n) for n in range(2)]


def _turn(server: FairServer) -> None:
    """One round of the server's poll loop, as its process runs it."""
    wasyncore.loop(timeout=0.01, map=server._map, count=1)


def _connect(listening: socket.socket) -> socket.socket:
    return socket.create_connection(listening.getsockname()[:2])


def _held(server: FairServer) -> int:
    return sum(1 for d in server._map.values() if isinstance(d, HTTPChannel))


def test_connections_are_shared_evenly(listening: socket.socket) -> None:
    shares = Shares(multiprocessing.get_context("spawn"), 2)
    first, second = _servers(listening, shares)
    clients = []
    for _ in range(8):  # each process's loop runs in turn, the first first (awake first)
        clients.append(_connect(listening))
        for _ in range(3):
            _turn(first)
            _turn(second)
    assert (_held(first), _held(second)) == (4, 4)
    for client in clients:
        client.close()


def test_the_sleeping_process_is_woken_when_it_is_its_turn(listening: socket.socket) -> None:
    shares = Shares(multiprocessing.get_context("spawn"), 2)
    first, second = _servers(listening, shares)
    bell = shares.bells[1][0]
    _turn(second)  # the second looked at the counts: as few as the first
    _turn(first)
    client = _connect(listening)
    _turn(first)
    _turn(first)  # the first took it and stopped accepting
    assert _held(first) == 1 and not first.readable()
    assert select.select([bell], [], [], 1.0)[0] == [bell], "the second's bell did not ring"
    _turn(second)  # woken by it: accepts again
    assert second.readable()
    client.close()


def test_a_process_not_serving_holds_no_one_back(listening: socket.socket) -> None:
    shares = Shares(multiprocessing.get_context("spawn"), 2)
    first, _ = _servers(listening, shares)
    shares.counts[1] = 2  # a process killed with fewer connections left its count
    shares.starting(1)  # its replacement starts
    assert shares.counts[1] == NOT_SERVING
    clients = [_connect(listening) for _ in range(3)]
    for _ in range(6):
        _turn(first)
    assert _held(first) == 3
    for client in clients:
        client.close()
