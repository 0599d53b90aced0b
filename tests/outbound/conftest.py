"""A RIS for the tests: python-hl7's asyncio MLLP server in a thread. It parses every message
with hl7apy at strict validation for the message's version, keeps it by control ID (a repeat
of a control ID is a duplicate, as a RIS treats it) and answers AA, or what `answer` says."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import hl7
import hl7.mllp
import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from tests.dicom.conftest import free_port


@dataclass
class Ris:
    port: int
    results: dict[str, str] = field(default_factory=dict)  # control ID -> the message
    repeats: list[str] = field(default_factory=list)  # control IDs received again
    # (message) -> ACK code, or "" to drop the connection without an answer (a RIS dying)
    answer: Callable[[str], str] = lambda message: "AA"
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.base_events.Server | None = None

    def start(self) -> None:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._server = self._loop.run_until_complete(
                hl7.mllp.start_hl7_server(
                    self._receive, host="127.0.0.1", port=self.port, encoding="utf-8"
                )
            )
            ready.set()
            self._loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        assert ready.wait(10)

    def stop(self) -> None:
        if self._loop is None or self._server is None:
            return
        loop, server = self._loop, self._server

        async def close() -> None:
            server.close()
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        self._loop = self._server = None

    async def _receive(
        self, reader: hl7.mllp.HL7StreamReader, writer: hl7.mllp.HL7StreamWriter
    ) -> None:
        try:
            while not writer.is_closing():
                message = await reader.readmessage()
                text = str(message)
                version = str(message.segment("MSH")[12])
                parse_message(text, validation_level=VALIDATION_LEVEL.STRICT).validate()
                parsed = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT)
                assert parsed.msh.msh_12.to_er7() == version
                code = self.answer(text)
                if not code:
                    writer.close()
                    return
                control = str(message.segment("MSH")[10])
                if code == "AA":
                    if control in self.results:
                        self.repeats.append(control)
                    self.results[control] = text
                writer.writemessage(message.create_ack(code))
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass


@pytest.fixture
def ris() -> Iterator[Ris]:
    running = Ris(free_port())
    running.start()
    yield running
    running.stop()
