"""Structured logs: one line per event, `event key=value ...`. Never pass patient names."""

from __future__ import annotations

import logging
import sys


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # pynetdicom narrates every PDU at INFO; its warnings and errors are what operators need
    logging.getLogger("pynetdicom").setLevel(max(logging.WARNING, root.level))


def log_event(logger: logging.Logger, event: str, **fields: object) -> None:
    """`request method=GET path=/fhir/Observation status=200`; values with spaces are quoted."""
    if logger.isEnabledFor(logging.INFO):
        logger.info("%s %s", event, " ".join(f"{k}={_value(v)}" for k, v in fields.items()))


def _value(v: object) -> str:
    text = str(v)
    return f'"{text}"' if (" " in text or not text) else text
