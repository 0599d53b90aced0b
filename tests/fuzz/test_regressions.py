"""The fuzz targets over what atheris found (tests/data/fuzz/<target>/, each file named for
the fault it showed) and over the corpus they start from: quick, in every run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.targets import REGRESSIONS, TARGETS


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_found_inputs_and_seeds_pass_the_target(name: str, tmp_path: Path) -> None:
    target = TARGETS[name](tmp_path)
    found = sorted((REGRESSIONS / name).glob("*"))
    for path in [*found, *target.seeds()]:
        target(path.read_bytes())
    assert target.seeds()


def test_a_superscript_digit_in_the_version_gets_ar(tmp_path: Path) -> None:
    """MSH-12 "2.³": str.isdigit() took it, int() did not (ValueError, no ACK)."""
    target = TARGETS["hl7"](tmp_path)
    answer = target.handler.handle(
        (REGRESSIONS / "hl7" / "superscript-version-digit.hl7").read_bytes()
    )
    assert b"MSA|AR|" in answer and b"is not supported" in answer
