"""The reference of bench/hl7.py: python-hl7's MLLP server (asyncio) answering every message
with an AA ACK and doing nothing else. Run with -P (bench/hl7.py would shadow the package):

    .venv/bin/python -P bench/mllp_reference.py 2576
"""

from __future__ import annotations

import asyncio
import sys

import hl7.mllp


async def _answer(reader: hl7.mllp.HL7StreamReader, writer: hl7.mllp.HL7StreamWriter) -> None:
    try:
        while True:
            message = await reader.readmessage()
            writer.writemessage(message.create_ack())
            await writer.drain()
    except asyncio.IncompleteReadError:  # the client is done
        writer.close()


async def _serve(port: int) -> None:
    server = await hl7.mllp.start_hl7_server(_answer, host="127.0.0.1", port=port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1])))
