"""The CLI's rough edges, each one line saying what to do, the documented exit status and no
traceback: run in-process with click's CliRunner against a store in a temporary folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from server.auth.users import authenticate
from server.cli import main
from server.store.sqlite import SqliteStore
from tests.dicom.conftest import free_port


@pytest.fixture
def kerma(tmp_path: Path) -> CliRunner:
    return CliRunner(env={"KERMA_DATA_DIR": str(tmp_path)})


def _one_line_error(result: Result, status: int, words: str) -> None:
    assert result.exit_code == status, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    errors = [line for line in result.stderr.splitlines() if line.startswith(("Error", "kerma"))]
    assert len(errors) == 1 and words in errors[0], result.stderr


def test_hl7_send_to_a_closed_port(kerma: CliRunner, tmp_path: Path) -> None:
    message = tmp_path / "a08.hl7"
    message.write_text("MSH|^~\\&|HIS|H|KERMA|K|20260101||ADT^A08|1|P|2.5\r")
    port = free_port()
    result = kerma.invoke(main, ["hl7", "send", str(message), "--port", str(port)])
    _one_line_error(result, 1, f"no HL7 listener answers at 127.0.0.1:{port}")


def test_report_out_paths(kerma: CliRunner, tmp_path: Path) -> None:
    period = ["--from", "2026-01-01", "--to", "2026-02-01"]
    missing = kerma.invoke(
        main, ["report", "department", *period, "--out", str(tmp_path / "no" / "r.pdf")]
    )
    _one_line_error(missing, 2, "does not exist; create it")
    text = kerma.invoke(main, ["report", "survey", *period, "--out", str(tmp_path / "s.txt")])
    _one_line_error(text, 2, "must end in .pdf or .json")
    assert not (tmp_path / "s.txt").exists()


def test_unknown_quarantine_id_and_unknown_device(kerma: CliRunner) -> None:
    _one_line_error(kerma.invoke(main, ["quarantine", "reprocess", "nope"]), 2,
                    "no quarantined object nope")  # fmt: skip
    added = kerma.invoke(main, ["users", "add", "rad", "--role", "radiographer",
                                "--device", "Device/doesnotexist"])  # fmt: skip
    _one_line_error(added, 2, "no Device/doesnotexist in the store")


def test_a_token_is_issued_again_and_the_old_one_stops_working(
    kerma: CliRunner, tmp_path: Path
) -> None:
    first = kerma.invoke(main, ["users", "add", "ann", "--role", "mpe"]).stdout.split()[-1]
    again = kerma.invoke(main, ["users", "token", "ann"])
    assert again.exit_code == 0 and "the old one no longer works" in again.stderr
    second = again.stdout.split()[-1]
    store = SqliteStore(tmp_path / "kerma.sqlite3")
    try:
        assert authenticate(store, f"Bearer {first}") is None
        assert authenticate(store, f"Bearer {second}").name == "ann"  # type: ignore[union-attr]
    finally:
        store.close()
    _one_line_error(kerma.invoke(main, ["users", "token", "bob"]), 2, "no user 'bob'")
    listed = kerma.invoke(main, ["users", "list"]).stdout.splitlines()
    assert listed == ["name\trole\tstate\tdevices", "ann\tmpe\tactive\t"]
    rows = json.loads(kerma.invoke(main, ["users", "list", "--json"]).stdout)
    assert rows == [{"name": "ann", "role": "mpe", "state": "active", "devices": ""}]
