"""A real SMTP server (aiosmtpd) and a real HTTP receiver on loopback, for notifications."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from server.store.port import Store


@pytest.fixture
def store(any_store: Store) -> Store:
    """Notification tests run on every store adapter."""
    return any_store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Inbox:
    """What the local SMTP server received: (envelope recipients, parsed message, when)."""

    def __init__(self) -> None:
        self.mails: list[tuple[list[str], EmailMessage, float]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(
            (
                list(envelope.rcpt_tos),
                message_from_bytes(envelope.content, _class=EmailMessage, policy=policy.default),
                time.time(),
            )
        )
        return "250 OK"

    def wait(
        self, count: int, timeout_s: float = 10.0
    ) -> list[tuple[list[str], EmailMessage, float]]:
        deadline = time.monotonic() + timeout_s
        while len(self.mails) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.mails


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


class Receiver:
    """A webhook receiver that answers `failures` requests with 503 before it accepts."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[tuple[dict[str, str], bytes, int]] = []


@pytest.fixture
def webhook() -> Iterator[Any]:
    servers: list[ThreadingHTTPServer] = []

    def start(failures: int = 0) -> tuple[Receiver, str]:
        receiver = Receiver(failures)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = 503 if len(receiver.requests) < receiver.failures else 200
                receiver.requests.append((dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return receiver, f"http://127.0.0.1:{server.server_address[1]}/hook"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
