"""Sending one HL7 v2 message over MLLP and reading its ACK.

python-hl7's MLLPClient has no timeout and returns what one recv() gives, which can be half an
ACK; this reads until the end block (FS CR) or the time runs out.
"""

from __future__ import annotations

import socket
import time

START, END = b"\x0b", b"\x1c\r"
_MAX_ACK_BYTES = 1 << 20


def exchange(host: str, port: int, message: bytes, timeout_s: float = 30.0) -> bytes:
    """Send `message` (ER7 bytes) and return the answer without its framing; raises OSError
    (refused, reset, timed out) when no whole answer came."""
    deadline = time.monotonic() + timeout_s
    with socket.create_connection((host, port), timeout=timeout_s) as connection:
        connection.sendall(START + message + END)
        answer = b""
        while END not in answer:
            connection.settimeout(max(0.1, deadline - time.monotonic()))
            chunk = connection.recv(65536)
            if not chunk:
                raise ConnectionResetError("the receiver closed the connection without an ACK")
            answer += chunk
            if len(answer) > _MAX_ACK_BYTES:
                raise ConnectionError("the answer is larger than any ACK")
    return answer.partition(END)[0].lstrip(START)
