"""Structured logs: one line per event, `event key=value ...`, or one JSON object per line
(KERMA_LOG_FORMAT=json) for log collectors. Never pass patient names."""

from __future__ import annotations

import logging
import re
import sys
import warnings
from collections import Counter
from datetime import UTC, datetime

import orjson


def configure(level: str = "INFO", log_format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # pynetdicom narrates every PDU at INFO; its warnings and errors are what operators need
    logging.getLogger("pynetdicom").setLevel(max(logging.WARNING, root.level))
    # waitress warns each time a request waits for a free thread: load, not a fault
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    warnings.showwarning = _log_warning


def log_event(logger: logging.Logger, event: str, **fields: object) -> None:
    """`request method=GET path=/fhir/Observation status=200`; values with spaces are quoted."""
    if logger.isEnabledFor(logging.INFO):
        logger.info(
            "%s %s",
            event,
            " ".join(f"{k}={_value(v)}" for k, v in fields.items()),
            extra={"kerma_event": event, "kerma_fields": fields},
        )


def _value(v: object) -> str:
    text = str(v)
    return f'"{text}"' if (" " in text or not text) else text


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_warnings_seen: Counter[tuple[str, str]] = Counter()
_WARNING_REPEAT = 1000  # a repeated warning is logged again each 1000th time, with its count


def _log_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: object = None, line: str | None = None) -> None:  # fmt: skip
    """A library's warning as one event line (which library, what), not its source path; the
    same warning again only each 1000th time, counted: a flood of bad files stays readable."""
    text = warning_text(message)
    library = library_of(filename)
    key = (library, text)
    _warnings_seen[key] += 1
    seen = _warnings_seen[key]
    if seen == 1 or seen % _WARNING_REPEAT == 0:
        log_event(logging.getLogger("kerma.warnings"), "library-warning", library=library,
                  category=category.__name__, times=seen, warning=text)  # fmt: skip


def warning_text(message: Warning | str) -> str:
    """A warning's first line, quoted values dropped: it may quote a patient's name."""
    return _QUOTED.sub("'…'", str(message).splitlines()[0])[:200] if str(message) else ""


def library_of(filename: str) -> str:
    """The library a warning comes from (pydicom), from the file that raised it."""
    return filename.rpartition("site-packages/")[2].split("/")[0] or filename


class JsonFormatter(logging.Formatter):
    """{"time": ..., "level": ..., "logger": ..., "event": ..., <fields>} on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        event = getattr(record, "kerma_event", None)
        if event is None:
            line["message"] = record.getMessage()
        else:
            line["event"] = event
            fields = getattr(record, "kerma_fields", {})
            line.update({k: v if isinstance(v, int | float | bool) else str(v)
                         for k, v in fields.items()})  # fmt: skip
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()
