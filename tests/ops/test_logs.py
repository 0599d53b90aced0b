"""Log lines: `event key=value`, or JSON objects for collectors; library warnings as one line
without source paths or quoted values (a pydicom warning may quote a patient's name)."""

from __future__ import annotations

import json
import logging
import warnings

import pytest

from server.logs import configure, log_event


@pytest.fixture
def restored_logging() -> object:
    root = logging.getLogger()
    handlers, level, show = root.handlers[:], root.level, warnings.showwarning
    yield None
    root.handlers[:], warnings.showwarning = handlers, show
    root.setLevel(level)


def test_json_lines_carry_the_event_and_its_fields(
    restored_logging: object, capsys: pytest.CaptureFixture[str]
) -> None:
    configure("INFO", "json")
    log_event(logging.getLogger("kerma.test"), "received", calling_ae="CT 1", bytes=512)
    line = json.loads(capsys.readouterr().err.strip())
    assert {k: line[k] for k in ("level", "logger", "event", "calling_ae", "bytes")} == {
        "level": "INFO", "logger": "kerma.test", "event": "received", "calling_ae": "CT 1",
        "bytes": 512,
    }  # fmt: skip
    assert line["time"].endswith("+00:00")


def test_a_library_warning_is_one_line_without_the_quoted_value(
    restored_logging: object, capsys: pytest.CaptureFixture[str]
) -> None:
    configure("INFO", "text")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        for _ in range(3):
            warnings.warn_explicit("Invalid value for VR PN: 'DOE^JOHN'", UserWarning,
                                   "/x/site-packages/pydicom/valuerep.py", 1)  # fmt: skip
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "DOE" not in lines[0]
    assert lines[0].endswith(
        "library-warning library=pydicom category=UserWarning times=1 "
        "warning=\"Invalid value for VR PN: '…'\""
    )
