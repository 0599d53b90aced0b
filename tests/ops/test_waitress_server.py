"""waitress as Kerma serves with it (server/waitress_server.py): the I/O thread does not go round
its loop for an answer a worker is sending, and answers of every size still arrive whole, to
slow readers too, with several connections at once."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from server.waitress_server import Channel, server_on

CHUNK = bytes(range(256)) * 4096  # 1 MiB
# past waitress's outbuf_high_watermark (16 MiB): the worker waits for the I/O thread to send
LARGE_CHUNKS = 24


def _app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
    chunks = int(environ["PATH_INFO"].strip("/") or 1)
    start_response("200 OK", [("Content-Length", str(chunks * len(CHUNK)))])
    return iter([CHUNK] * chunks)


@pytest.fixture
def server() -> Iterator[Any]:
    listening = socket.create_server(("127.0.0.1", 0))
    served = server_on(_app, listening, threads=4)
    thread = threading.Thread(target=served.run, daemon=True)
    thread.start()
    yield served
    served.task_dispatcher.shutdown(timeout=5)
    served.close()


def test_a_connection_whose_worker_is_sending_asks_nothing_of_the_io_thread(server: Any) -> None:
    ours, theirs = socket.socketpair()
    channel = Channel(server, ours, ("127.0.0.1", 1), server.adj, map={})
    channel.total_outbufs_len = 10  # an answer not yet all sent
    channel.requests = [object()]  # its request's worker still runs
    sending = threading.Event()
    done = threading.Event()

    def worker_sends() -> None:
        with channel.outbuf_lock:
            sending.set()
            done.wait(10)

    worker = threading.Thread(target=worker_sends)
    worker.start()
    sending.wait(10)
    assert not channel.writable()  # the worker sends, and pulls the trigger if it leaves any
    done.set()
    worker.join()
    assert channel.writable()  # the worker left it unsent: the I/O thread sends it
    channel.requests = []
    assert channel.writable()
    channel.total_outbufs_len = 0
    assert not channel.writable()
    ours.close()
    theirs.close()


def _fetch(port: int, chunks: int, slow: bool) -> tuple[int, str]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
        client.sendall(f"GET /{chunks} HTTP/1.1\r\nHost: kerma\r\n\r\n".encode())
        received = b""
        while b"\r\n\r\n" not in received:
            received += client.recv(65536)
        head, body = received.split(b"\r\n\r\n", 1)
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))  # fmt: skip
        digest = hashlib.sha256(body)
        got = len(body)
        if slow:  # the server fills the socket's buffers, then its own past the watermark
            time.sleep(0.5)
        while got < length:
            data = client.recv(65536)
            assert data, f"closed after {got} of {length} bytes"
            digest.update(data)
            got += len(data)
        return got, digest.hexdigest()


@pytest.mark.parametrize("chunks", [1, LARGE_CHUNKS])
def test_answers_arrive_whole_to_slow_and_fast_readers_at_once(server: Any, chunks: int) -> None:
    expected = (chunks * len(CHUNK), hashlib.sha256(CHUNK * chunks).hexdigest())
    port = server.socket.getsockname()[1]
    results: list[tuple[int, str]] = []
    readers = [threading.Thread(target=lambda slow=slow: results.append(_fetch(port, chunks, slow)))
               for slow in (True, False, True, False)]  # fmt: skip
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(60)
    assert results == [expected] * 4
