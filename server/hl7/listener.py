"""The MLLP listener: HL7 v2 over TCP, many connections, each kept open for many messages.

python-hl7's asyncio MLLP streams do the framing (hl7apy's MLLP server closes the connection
after every message). Each message is handled in a worker thread (the store is blocking) and
answered before the next one on that connection is read, so order per sender is kept. Bytes
that are not an MLLP block get an AR, and the connection stays up. A block far beyond the
handler's size limit is not buffered: it gets an AR and the connection is closed (what follows
it on the wire cannot be framed). A connection that delivers no whole message within the
timeout is closed, so idle or trickling peers hold no resources for ever.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from hl7.mllp import HL7StreamReader, HL7StreamWriter, InvalidBlockError, start_hl7_server

from server.hl7.ack import Outcome, ack
from server.logs import log_event

log = logging.getLogger("kerma.hl7")
# blocks up to this many times the handler's limit are read whole, so that the handler's AR
# can name the message it refuses
FRAMING_MARGIN = 4


class Hl7Listener:
    def __init__(
        self,
        handle: Callable[[bytes], bytes],
        host: str,
        port: int,
        receiver: str,
        max_bytes: int,
        timeout_s: float,
        threads: int = 4,
    ) -> None:
        self._handle = handle
        self._address = (host, port)
        self._receiver = receiver
        self._framing_limit = max_bytes * FRAMING_MARGIN
        self._timeout_s = timeout_s
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="kerma-hl7")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="kerma-hl7-listener", daemon=True)
        self._ready = threading.Event()
        self._server: asyncio.Server | None = None
        self._failure: BaseException | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(30)
        if self._failure is not None:
            raise self._failure

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._thread.join(10)
        self._pool.shutdown(wait=True)

    async def _shutdown(self) -> None:
        """Stop listening, end the open connections (their answered messages are on disk),
        then stop the loop."""
        if self._server is not None:
            self._server.close()
        current = asyncio.current_task()
        connections = [t for t in asyncio.all_tasks() if t is not current]
        for task in connections:
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)
        self._loop.call_soon(self._loop.stop)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(
                start_hl7_server(self._client, *self._address, limit=self._framing_limit)
            )
        except OSError as e:
            self._failure = e
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _client(self, reader: HL7StreamReader, writer: HL7StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            while True:
                answer, more = await self._answer(reader)
                if answer is not None:
                    writer.writeblock(answer)
                    await writer.drain()
                if not more:
                    break
        except ConnectionError:
            pass  # the sender went away; what it was answered is on disk
        finally:
            writer.close()
        log_event(log, "hl7-connection-closed", peer=peer)

    async def _answer(self, reader: HL7StreamReader) -> tuple[bytes | None, bool]:
        """The answer to the next block, and whether to read on from this connection."""
        try:
            block = await asyncio.wait_for(reader.readblock(), self._timeout_s)
        except InvalidBlockError:
            return self._nak("MLLP framing: the block does not start with <VT> (0x0B)"), True
        except ValueError:
            return self._nak(f"the message is longer than {self._framing_limit} bytes"), False
        except TimeoutError:
            log_event(log, "hl7-timeout", seconds=self._timeout_s)
            return None, False
        except asyncio.IncompleteReadError as e:
            if e.partial.strip():
                log_event(log, "hl7-incomplete-block", bytes=len(e.partial))
            return None, False
        return await self._loop.run_in_executor(self._pool, self._handle, block), True

    def _nak(self, reason: str) -> bytes:
        log_event(log, "hl7-rejected", reason=reason)
        return ack(None, Outcome.rejected(reason, "100"), self._receiver)
