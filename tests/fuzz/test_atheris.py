"""A bounded coverage-guided fuzzing run per reader (atheris) from the corpus: it finds
nothing, or the test fails with the input (base64) that broke the target, to be fixed and
kept in tests/data/fuzz/<target>/. KERMA_TEST_FUZZ_SECONDS sets the time (default 10 s: about
700 inputs past the seeds for DICOM and 6,800 HL7 messages on an idle machine, half that
beside the rest of the suite; enough to catch a reader that breaks on the first mutations.
libFuzzer seeds each run anew, so the runs do not repeat one another; a longer run is
docs/development.md's command)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.targets import REGRESSIONS, TARGETS

SECONDS = int(os.environ.get("KERMA_TEST_FUZZ_SECONDS", "10"))
ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize("name", sorted(TARGETS))
@pytest.mark.usefixtures("children_tmpdir")  # the fuzzer's store, which it leaves
def test_a_fuzzing_run_finds_nothing(name: str, tmp_path: Path) -> None:
    corpus, seeds, found = tmp_path / "corpus", tmp_path / "seeds", tmp_path / "found"
    for folder in (corpus, seeds, found):
        folder.mkdir()
    for path in [*TARGETS[name].seeds(), *(REGRESSIONS / name).glob("*")]:
        shutil.copy(path, seeds / path.name)
    run = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.run", name, f"-max_total_time={SECONDS}",
         "-timeout=10", "-rss_limit_mb=3072", f"-artifact_prefix={found}/", str(corpus), str(seeds)],
        cwd=ROOT, capture_output=True, text=True, errors="replace", timeout=SECONDS + 120,
    )  # fmt: skip
    assert run.returncode == 0, f"{sorted(found.iterdir())}\n{run.stderr[-4000:]}"
    assert "Done" in run.stderr and list(corpus.iterdir())  # it ran, and grew a corpus
