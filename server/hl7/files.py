"""HL7 files as HIS export them: one message, several, or a batch (FHS/BHS ... BTS/FTS)."""

from __future__ import annotations

import re

_BATCH_SEGMENTS = (b"FHS", b"BHS", b"BTS", b"FTS")


def messages_in(raw: bytes) -> list[bytes]:
    """Each message of a file, segments joined by CR as on the wire; batch envelopes dropped."""
    messages: list[list[bytes]] = []
    for segment in re.split(rb"\r\n|\r|\n", raw):
        segment = segment.strip(b"\x0b\x1c")
        if not segment.strip() or segment[:3] in _BATCH_SEGMENTS:
            continue
        if segment.startswith(b"MSH") or not messages:
            messages.append([])
        messages[-1].append(segment)
    return [b"\r".join(m) + b"\r" for m in messages]
